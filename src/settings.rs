//! Defaults < config file < environment < flags, merged once into checked options for the library.

use crate::cli::SourceArgs;
use crate::source::http::HttpOptions;
use crate::source::{FetchOptions, Location, DEFAULT_SOURCE};
use std::time::Duration;

/// Everything needed to fetch the list.
#[derive(Debug, Clone)]
pub struct SourceSettings {
    pub location: Location,
    pub fetch: FetchOptions,
}

impl SourceSettings {
    pub fn from_args(args: &SourceArgs) -> anyhow::Result<SourceSettings> {
        let location = Location::parse(args.source.as_deref().unwrap_or(DEFAULT_SOURCE))?;
        let defaults = HttpOptions::default();
        let http = HttpOptions {
            timeout: args.timeout.map_or(defaults.timeout, Duration::from_secs),
            max_bytes: args.max_size.unwrap_or(defaults.max_bytes),
            allow_http: args.allow_http,
            ca_file: args.ca_file.clone(),
            ..defaults
        };
        let mut fetch = FetchOptions {
            http,
            ..FetchOptions::default()
        };
        fetch.parse.columns = args.columns.clone();
        Ok(SourceSettings { location, fetch })
    }
}
