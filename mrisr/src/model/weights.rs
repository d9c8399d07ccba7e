//! Weight files: safetensors with f16 tensors (half the size, no visible loss for inference)
//! and the model card in the header metadata, so one file carries everything needed to use it.

use burn::store::{HalfPrecisionAdapter, ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;

use super::card::{CARD_KEY, ModelCard, read_card};
use super::net::SrNet;
use crate::{Error, Result};

/// Serialises `net` and its card into weight-file bytes.
pub fn save(net: &SrNet, card: &ModelCard) -> Result<Vec<u8>> {
    let json = serde_json::to_string(card).expect("a model card always serialises");
    let mut store = SafetensorsStore::from_bytes(None)
        .metadata(CARD_KEY, json)
        .with_to_adapter(HalfPrecisionAdapter::new());
    let fail = |e: &dyn std::fmt::Display| Error::Weights {
        path: "<memory>".into(),
        reason: format!("could not serialise weights: {e}"),
    };
    net.save_into(&mut store).map_err(|e| fail(&e))?;
    store.get_bytes().map_err(|e| fail(&e))
}

/// Builds the network a weight file describes and loads its weights onto `device`.
///
/// Checks that the file is an mrisr weight file, that its card is readable and that every
/// tensor the network needs is there with the right shape (and nothing else is).
pub fn load(name: &str, bytes: &[u8], device: &Device) -> Result<(SrNet, ModelCard)> {
    let card = read_card(name, bytes)?;
    let net = load_into(name, bytes, &card, card.net.init(device))?;
    Ok((net, card))
}

/// Loads the tensors of a weight file into `net`, a network built for `card.net` (the file's
/// card, from [`read_card`]): the trainer's, on an autodiff device, when it starts from earlier
/// weights. Same checks as [`load`].
pub fn load_into(name: &str, bytes: &[u8], card: &ModelCard, mut net: SrNet) -> Result<SrNet> {
    let bad = |reason: String| Error::Weights {
        path: name.into(),
        reason,
    };
    let mut store = SafetensorsStore::from_bytes(Some(bytes.to_vec()))
        .with_from_adapter(HalfPrecisionAdapter::new())
        .validate(true);
    let applied = net
        .load_from(&mut store)
        .map_err(|e| bad(format!("weights do not fit the network in the card: {e}")))?;
    if !applied.missing.is_empty() || !applied.errors.is_empty() || !applied.unused.is_empty() {
        let missing: Vec<_> = applied.missing.iter().map(|(p, _)| p.as_str()).collect();
        return Err(bad(format!(
            "weights do not fit the network ({} blocks x {} channels in the card): missing {:?}, \
             unexpected {:?}, errors {:?}",
            card.net.blocks, card.net.channels, missing, applied.unused, applied.errors
        )));
    }
    Ok(net)
}
