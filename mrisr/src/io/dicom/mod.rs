//! DICOM: scan a folder, group files into series, assemble volumes, write derived series.

use serde::{Deserialize, Serialize};

/// DICOM attributes of a source series that a derived series keeps (patient, study, frame of
/// reference, ...), stored as (tag, VR, value) so a writer can copy them verbatim.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceAttributes {
    pub elements: Vec<(u16, u16, String, String)>,
}
