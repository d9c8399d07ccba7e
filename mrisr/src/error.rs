//! One error type for the library: every variant names the file (or input) and the reason,
//! so the CLI and the page can show it to a person as is.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system could not read or write a file.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A DICOM file that cannot be used, and why.
    #[error("{path}: {reason}")]
    Dicom { path: PathBuf, reason: String },
    /// A NIfTI file that cannot be used, and why.
    #[error("{path}: {reason}")]
    Nifti { path: PathBuf, reason: String },
    /// A weight file that cannot be used, and why.
    #[error("{path}: {reason}")]
    Weights { path: PathBuf, reason: String },
    /// Input that is well-formed but not usable here (empty folder, bad dimensions...).
    #[error("{0}")]
    Invalid(String),
    /// The user asked to stop (Cancel in the page, Ctrl-C in the CLI).
    #[error("cancelled")]
    Cancelled,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub fn dicom(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Dicom {
            path: path.into(),
            reason: reason.into(),
        }
    }
    pub fn nifti(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Nifti {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
