//! Rendering the list into mail-server configuration. Templates (minijinja, in `templates/`) decide the
//! text; this module builds the context they see (only validated domains, and free text already made
//! comment-safe), and checks every rendered line against the target's grammar before anything is
//! returned, so a broken or hostile template or list can never yield a config that merely "loads".

pub mod context;
pub mod digest;
pub mod exchange;
pub mod exim;
pub mod options;
pub mod postfix;
pub mod target;

use crate::list::ParticipantList;
use crate::source::Provenance;
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use options::{OptionError, RenderOptions};
use std::path::{Path, PathBuf};
pub use target::{BuiltIn, Target};

/// The shared header every built-in template includes.
const HEADER: (&str, &str) = ("_header.j2", include_str!("../../templates/_header.j2"));

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("could not read the template `{}`", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the template {file} failed{}: {problem}", .line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Template {
        /// The file the template came from (`built-in postfix-policy.j2`, or a path).
        file: String,
        line: Option<usize>,
        problem: String,
    },
    #[error("the templates directory `{}` {problem}", .path.display())]
    TemplatesDir { path: PathBuf, problem: String },
    #[error(transparent)]
    Option(#[from] OptionError),
    #[error("the {target} output failed its check at line {line}: {problem}")]
    Output {
        target: String,
        line: usize,
        problem: String,
    },
}

impl RenderError {
    pub fn hint(&self) -> Option<String> {
        match self {
            RenderError::Template { .. } => Some(
                "templates see only the variables documented in the README; an unknown variable is an error".into(),
            ),
            RenderError::TemplatesDir { .. } => Some(format!(
                "--templates takes a directory holding files named like the built-in templates: {}",
                BuiltIn::ALL.map(|t| t.spec().template).join(", ")
            )),
            RenderError::Output { .. } => Some(
                "nothing was written; if you override templates (--templates), keep every line in the target's syntax".into(),
            ),
            RenderError::Option(_) => Some("see the README's option reference".into()),
            RenderError::Read { .. } => None,
        }
    }
}

/// What is rendered: the list and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct RenderInput<'a> {
    pub provenance: &'a Provenance,
    pub list: &'a ParticipantList,
    /// Local adjustments in force, named in every output's header.
    pub local: &'a [crate::plan::Adjustment],
}

/// A template environment: the embedded templates, each overridable by a file of the same name in a
/// directory.
pub struct Renderer {
    env: Environment<'static>,
    /// Where each template came from, for errors: template name → `built-in x.j2` or a path.
    origins: std::collections::HashMap<String, String>,
    /// SHA-256 of every template's name and text, in the order they were added.
    sources: [u8; 32],
}

/// A template error, said as a template author needs it: which file, which line, and for an undefined
/// variable, which one.
fn template_error(
    env: &Environment,
    origins: &std::collections::HashMap<String, String>,
    err: minijinja::Error,
) -> RenderError {
    let name = err.name().unwrap_or("template").to_string();
    let file = origins
        .get(&name)
        .cloned()
        .unwrap_or_else(|| format!("`{name}`"));
    let source = env.get_template(&name).ok().map(|t| t.source().to_string());
    let snippet = err
        .range()
        .zip(source.as_deref())
        .and_then(|(r, src)| src.get(r))
        .map(|s| crate::sanitize::excerpt(s.trim(), 60));
    let problem = match (err.kind(), snippet) {
        (minijinja::ErrorKind::UndefinedError, Some(expr)) => {
            format!("undefined variable or field in `{expr}`")
        }
        _ => match err.detail() {
            Some(d) => format!("{} ({d})", err.kind()),
            None => err.kind().to_string(),
        },
    };
    RenderError::Template {
        file,
        line: err.line(),
        problem,
    }
}

impl Renderer {
    pub fn new(templates_dir: Option<&Path>) -> Result<Renderer, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.add_filter("comment", |s: String| crate::sanitize::comment(&s));
        env.add_filter("ps_quote", |s: String| exchange::ps_quote(&s));
        let embedded = BuiltIn::ALL.map(|t| (t.spec().template, t.spec().source));
        let mut origins = std::collections::HashMap::new();
        let mut sources = <sha2::Sha256 as sha2::Digest>::new();
        let mut overridden = 0;
        if let Some(d) = templates_dir.filter(|d| !d.is_dir()) {
            return Err(RenderError::TemplatesDir {
                path: d.to_path_buf(),
                problem: "is not a directory".into(),
            });
        }
        for (name, text) in std::iter::once(HEADER).chain(embedded) {
            let (text, origin) = match templates_dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
                Some(path) => {
                    overridden += 1;
                    let text =
                        std::fs::read_to_string(&path).map_err(|source| RenderError::Read {
                            path: path.clone(),
                            source,
                        })?;
                    (text, format!("`{}`", path.display()))
                }
                None => (text.to_string(), format!("built-in `{name}`")),
            };
            origins.insert(name.to_string(), origin);
            for part in [name.as_bytes(), b"\0", text.as_bytes(), b"\0"] {
                sha2::Digest::update(&mut sources, part);
            }
            if let Err(e) = env.add_template_owned(name, text) {
                return Err(template_error(&env, &origins, e));
            }
        }
        if let Some(d) = templates_dir.filter(|_| overridden == 0) {
            return Err(RenderError::TemplatesDir {
                path: d.to_path_buf(),
                problem: "holds no template of a built-in name, so nothing would change".into(),
            });
        }
        Ok(Renderer {
            env,
            origins,
            sources: sha2::Digest::finalize(sources).into(),
        })
    }

    /// The template fields (of [`context::FIELDS`]) that rendering `targets` reads: those named by
    /// each template and by the templates it may include, so the context converts no more of the list
    /// than that. A user template's file is read for it.
    pub fn fields_for<'t>(
        &self,
        targets: impl IntoIterator<Item = &'t Target>,
    ) -> Result<std::collections::BTreeSet<&'static str>, RenderError> {
        let mut names: std::collections::BTreeSet<String> = Default::default();
        let mut sources: Vec<String> = Vec::new();
        for target in targets {
            match target {
                Target::BuiltIn(t) => {
                    let fail = |e| template_error(&self.env, &self.origins, e);
                    let tpl = self.env.get_template(t.spec().template).map_err(fail)?;
                    names.extend(tpl.undeclared_variables(false));
                    sources.push(tpl.source().to_string());
                }
                // A user template may name any field: it is given all of them.
                Target::Template(_) => return Ok(context::FIELDS.into_iter().collect()),
            }
        }
        // The templates an included one names, and so on: every embedded template whose name the
        // text quotes (`{% include "_header.j2" %}`) counts as included.
        let mut seen: std::collections::BTreeSet<&str> = Default::default();
        while let Some(src) = sources.pop() {
            for (name, tpl) in self.env.templates() {
                if !seen.contains(name)
                    && (src.contains(&format!("\"{name}\"")) || src.contains(&format!("'{name}'")))
                {
                    seen.insert(name);
                    names.extend(tpl.undeclared_variables(false));
                    sources.push(tpl.source().to_string());
                }
            }
        }
        Ok(context::FIELDS
            .into_iter()
            .filter(|f| names.contains(*f))
            .collect())
    }

    /// The context for rendering `targets`: only the fields they read ([`Renderer::fields_for`]).
    pub fn context_for<'t>(
        &self,
        targets: impl IntoIterator<Item = &'t Target>,
        input: RenderInput,
        opts: &RenderOptions,
    ) -> Result<minijinja::Value, RenderError> {
        opts.validate()?;
        Ok(context::partial(input, opts, self.fields_for(targets)?))
    }

    /// SHA-256 (hex) of what `target`'s output is rendered from, given [`digest::inputs`] of the list:
    /// those inputs, the target, and every template (a user template's file is read for it).
    pub fn digest(&self, target: &Target, inputs: &[u8; 32]) -> Result<String, RenderError> {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(inputs);
        h.update(self.sources);
        match target {
            Target::BuiltIn(t) => h.update(t.name().as_bytes()),
            Target::Template(path) => {
                let src = std::fs::read(path).map_err(|source| RenderError::Read {
                    path: path.clone(),
                    source,
                })?;
                h.update(b"template\0");
                h.update(&src);
            }
        }
        Ok(format!("{:x}", h.finalize()))
    }

    /// Renders one target, then checks the result line by line.
    pub fn render(
        &self,
        target: &Target,
        input: RenderInput,
        opts: &RenderOptions,
    ) -> Result<String, RenderError> {
        let ctx = self.context_for([target], input, opts)?;
        self.render_with(target, &ctx, opts)
    }

    /// The template context for a list, built once and shared by every target rendered from it.
    pub fn context(
        input: RenderInput,
        opts: &RenderOptions,
    ) -> Result<minijinja::Value, RenderError> {
        opts.validate()?;
        Ok(context::partial(input, opts, context::FIELDS))
    }

    /// Renders one target from a context made by [`Renderer::context`] with the same options.
    pub fn render_with(
        &self,
        target: &Target,
        ctx: &minijinja::Value,
        opts: &RenderOptions,
    ) -> Result<String, RenderError> {
        let text = match target {
            Target::Template(path) => {
                let src = std::fs::read_to_string(path).map_err(|source| RenderError::Read {
                    path: path.clone(),
                    source,
                })?;
                let mut env = self.env.clone();
                let mut origins = self.origins.clone();
                origins.insert("user".into(), format!("`{}`", path.display()));
                env.add_template_owned("user", src)
                    .map_err(|e| template_error(&self.env, &origins, e))?;
                let fail = |e| template_error(&env, &origins, e);
                let tpl = env.get_template("user").map_err(fail)?;
                tpl.render(ctx).map_err(fail)?
            }
            Target::BuiltIn(t) => {
                let fail = |e| template_error(&self.env, &self.origins, e);
                self.env
                    .get_template(t.spec().template)
                    .map_err(fail)?
                    .render(ctx)
                    .map_err(fail)?
            }
        };
        let mut text = text;
        if !text.ends_with('\n') {
            text.push('\n');
        }
        check(target, &text, opts).map_err(|(line, problem)| RenderError::Output {
            target: target.to_string(),
            line,
            problem,
        })?;
        Ok(text)
    }
}

/// Checks common to every output, then the target's own grammar. Returns the 1-based line of the first
/// problem.
pub fn check(target: &Target, text: &str, opts: &RenderOptions) -> Result<(), (usize, String)> {
    // Most of every output is plain printable ASCII: only the lines holding another byte get the full
    // Unicode check, and a line number is counted only for a problem.
    let plain = |b: &u8| (0x20..0x7f).contains(b) || *b == b'\t' || *b == b'\n';
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(off) = bytes[from..].iter().position(|b| !plain(b)) {
        let at = from + off;
        // '\n' is ASCII, so both ends are character boundaries.
        let start = bytes[..at]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        let end = bytes[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(bytes.len(), |i| at + i);
        if let Some(c) = text[start..end]
            .chars()
            .find(|c| crate::sanitize::is_dangerous(*c) && *c != '\t')
        {
            let line = bytes[..start].iter().filter(|b| **b == b'\n').count() + 1;
            return Err((
                line,
                format!("control or invisible character {}", c.escape_default()),
            ));
        }
        from = end;
    }
    match target {
        Target::BuiltIn(t) => (t.spec().check)(text, opts),
        Target::Template(_) => Ok(()),
    }
}

/// Data lines of a `#`-commented file: (1-based line number, line), skipping blank and comment lines.
pub(crate) fn data_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The check line by line, as it was written first: the reference for the one that skips plain text.
    fn reference(text: &str) -> Result<(), (usize, String)> {
        for (i, line) in text.split('\n').enumerate() {
            if let Some(c) = line
                .chars()
                .find(|c| crate::sanitize::is_dangerous(*c) && *c != '\t')
            {
                return Err((
                    i + 1,
                    format!("control or invisible character {}", c.escape_default()),
                ));
            }
        }
        Ok(())
    }

    fn common(text: &str) -> Result<(), (usize, String)> {
        let t = Target::Template(PathBuf::from("t"));
        check(&t, text, &RenderOptions::default())
    }

    #[test]
    fn control_and_invisible_characters_are_found_on_their_line() {
        for (text, line) in [
            ("a\nb\x1b[2J\nc\n", 2),
            ("\u{202e}first\n", 1),
            ("blåbær.no ok\nøst\r\nx\n", 2),
            ("ok\nok\nlast\u{200b}", 3),
            ("tab\tis fine\n\u{feff}", 2),
        ] {
            assert_eq!(common(text).map_err(|e| e.0), Err(line), "{text:?}");
            assert_eq!(common(text), reference(text));
        }
        assert_eq!(
            common("blåbær.no verify\n.blåbær.no verify\n\ttab\n"),
            Ok(())
        );
    }

    proptest! {
        #[test]
        fn the_check_finds_what_the_line_by_line_check_finds(
            text in "([a-z .\\t\\n]|ø|\\r|\u{1b}|\u{202e}|\u{200b}|\u{a0}|é){0,60}"
        ) {
            prop_assert_eq!(common(&text), reference(&text));
        }
    }
}
