//! Keeps `www/weights/index.json` (the list the page reads) in step with exported weights.

use std::path::Path;

use anyhow::Context;
use mrisr::model::ModelCard;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Adds or replaces the entry for `file` (a weight file in `dir`) in `dir/index.json`.
/// The first model listed becomes the default when none is.
pub fn update_index(dir: &Path, file: &str, card: &ModelCard, bytes: &[u8]) -> anyhow::Result<()> {
    let path = dir.join("index.json");
    let mut index: Value = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?,
        Err(_) => json!({ "models": [] }),
    };
    let models = index["models"]
        .as_array_mut()
        .with_context(|| format!("{}: no \"models\" list", path.display()))?;
    let was_default = models
        .iter()
        .any(|m| m["file"] == file && m["default"].as_bool() == Some(true));
    models.retain(|m| m["file"] != file);
    models.push(json!({
        "file": file,
        "title": format!("{} ({}, undoes {})", card.name, card.net.describe(), card.degradation),
        "bytes": bytes.len(),
        "sha256": format!("{:x}", Sha256::digest(bytes)),
        "default": was_default,
    }));
    if !models.iter().any(|m| m["default"].as_bool() == Some(true)) {
        models[0]["default"] = json!(true);
    }
    std::fs::write(&path, serde_json::to_string_pretty(&index)? + "\n")
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_entries_are_replaced_and_one_is_default() {
        let dir = tempfile::tempdir().unwrap();
        let card = ModelCard::new(
            "a",
            mrisr::model::Preset::Tiny.config(),
            "slices:2".parse().unwrap(),
        );
        update_index(dir.path(), "a.safetensors", &card, b"one").unwrap();
        update_index(dir.path(), "b.safetensors", &card, b"two").unwrap();
        update_index(dir.path(), "a.safetensors", &card, b"three").unwrap();
        let index: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("index.json")).unwrap())
                .unwrap();
        let models = index["models"].as_array().unwrap();
        assert_eq!(models.len(), 2);
        let a = models
            .iter()
            .find(|m| m["file"] == "a.safetensors")
            .unwrap();
        assert_eq!(a["bytes"], 5);
        assert_eq!(
            a["default"], true,
            "a stays the default after being replaced"
        );
        assert_eq!(models.iter().filter(|m| m["default"] == true).count(), 1);
        assert_eq!(a["sha256"], format!("{:x}", Sha256::digest(b"three")));
    }
}
