//! The few choices that are remembered between runs, in the platform's config directory.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Remembered choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Read the drive back after writing.
    pub verify: bool,
    /// Eject the drive when done.
    pub eject: bool,
    /// Allow system drives to be chosen (each still needs its name typed).
    pub unsafe_mode: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            verify: true,
            eject: true,
            unsafe_mode: false,
        }
    }
}

/// `…/graver/settings.json` in the OS's config directory (XDG, Application Support, AppData).
pub fn default_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("org", "Graver", "graver").map(|d| d.config_dir().join("settings.json"))
}

impl Settings {
    /// The saved settings, or the defaults when there are none or they cannot be read.
    pub fn load(path: Option<&PathBuf>) -> Self {
        path.and_then(|p| std::fs::read(p).ok())
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Saves; a failure only costs the memory of the choice, so it is not an error for the user.
    pub fn save(&self, path: Option<&PathBuf>) {
        let Some(path) = path else { return };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(json) = serde_json::to_vec_pretty(self) {
            let _ = std::fs::write(path, json);
        }
    }
}
