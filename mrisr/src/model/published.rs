//! The published models (`www/weights/`, listed in its `index.json`), built into the `mrisr`
//! command, so `mrisr upscale IN OUT` works without a weight file and `--model NAME` picks one.
//! A test keeps this list equal to `index.json`.

use super::card::{ModelCard, read_card};
use crate::{Error, Result};

/// One published weight file.
pub struct Published {
    /// The file's stem in `www/weights/`.
    pub name: &'static str,
    pub bytes: &'static [u8],
    /// The one the page and the CLI use unless told otherwise.
    pub default: bool,
}

pub const MODELS: &[Published] = &[
    Published {
        name: "fast-mse-slicesx2",
        bytes: include_bytes!("../../../www/weights/fast-mse-slicesx2.safetensors"),
        default: true,
    },
    Published {
        name: "fast-perceptual-slicesx2",
        bytes: include_bytes!("../../../www/weights/fast-perceptual-slicesx2.safetensors"),
        default: false,
    },
];

/// The default model.
pub fn default_model() -> &'static Published {
    MODELS.iter().find(|m| m.default).unwrap_or(&MODELS[0])
}

/// The model called `name`; the error lists the names there are.
pub fn find(name: &str) -> Result<&'static Published> {
    MODELS.iter().find(|m| m.name == name).ok_or_else(|| {
        let names: Vec<_> = MODELS.iter().map(|m| m.name).collect();
        Error::Invalid(format!(
            "no published model '{name}' (there are: {}; `mrisr models` describes them)",
            names.join(", ")
        ))
    })
}

impl Published {
    pub fn card(&self) -> Result<ModelCard> {
        read_card(self.name, self.bytes)
    }
}

/// One line about a model card, from [`ModelCard::summary`] (for `mrisr models`).
pub fn summary(card: &ModelCard) -> String {
    card.summary()
        .into_iter()
        .map(|(k, v)| format!("{}: {v}", k.to_lowercase()))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The built-in list is the page's list: same files, same default, same bytes.
    #[test]
    fn the_built_in_models_are_the_published_ones() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../www/weights");
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let listed = index["models"].as_array().unwrap();
        assert_eq!(
            listed.len(),
            MODELS.len(),
            "www/weights/index.json lists other models"
        );
        for entry in listed {
            let file = entry["file"].as_str().unwrap();
            let m = find(file.trim_end_matches(".safetensors")).unwrap();
            assert_eq!(m.default, entry["default"].as_bool().unwrap(), "{file}");
            assert_eq!(m.bytes, std::fs::read(dir.join(file)).unwrap().as_slice());
            let card = m.card().unwrap();
            assert!(summary(&card).contains("undoes"));
        }
        assert_eq!(MODELS.iter().filter(|m| m.default).count(), 1);
        let e = find("nope").err().unwrap().to_string();
        assert!(e.contains("fast-mse-slicesx2"), "{e}");
    }
}
