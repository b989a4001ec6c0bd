//! Windows elevation: being written.
use std::path::Path;

use crate::client::Connection;

pub(crate) fn launch(_worker: &Path, _token: &str) -> Result<Connection, String> {
    Err("not yet".into())
}
