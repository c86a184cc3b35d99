//! Exim: the domain list file read by `domainlist forced_tls_domains = partial-lsearch;…`, and the
//! router/transport/ACL snippet, with the checks each must pass.

/// One entry per line: `domain`, or `*.domain` (which `partial-lsearch` matches for the domain and its
/// subdomains). Comments start with `#` in the first column.
pub fn check_domains(text: &str) -> Result<(), (usize, String)> {
    for (n, line) in super::data_lines(text) {
        let bare = line.strip_prefix("*.").unwrap_or(line);
        if !crate::domain::is_normalised(bare) {
            return Err((
                n,
                format!(
                    "`{}` is not a domain entry",
                    crate::sanitize::excerpt(line, 80)
                ),
            ));
        }
    }
    Ok(())
}

/// The snippet carries no list data at all; outside comments it is plain ASCII config, and no line ends
/// in a backslash (which would join it to the next).
pub fn check_config(text: &str) -> Result<(), (usize, String)> {
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with('#') {
            continue;
        }
        if !line.is_ascii() {
            return Err((i + 1, "non-ASCII text outside a comment".into()));
        }
        if line.ends_with('\\') {
            return Err((i + 1, "a line continuation".into()));
        }
    }
    Ok(())
}
