//! Command-line groups shared by `mrisr` and the trainer (feature `args`), so a setting and its
//! default are declared once and mean the same in every command that takes them.

use clap::Args;

/// Largest tile sent to a burn device at once (voxels, halo included) by default: 96³.
pub const DEFAULT_MAX_TILE_VOXELS: usize = 96 * 96 * 96;

/// How a volume is cut for the network: tiles for burn devices, plane buffers for the CPU engine.
#[derive(Args, Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileArgs {
    /// burn devices (a GPU, burn's CPU backend): largest tile (voxels, halo included) sent at
    /// once. mrisr's CPU engine streams planes instead (--memory-mib).
    #[arg(long, default_value_t = DEFAULT_MAX_TILE_VOXELS)]
    pub max_tile_voxels: usize,
    /// mrisr's CPU engine: memory for its plane buffers, in MiB (wider columns, less
    /// recomputation).
    #[arg(long, default_value_t = crate::engine::DEFAULT_MEMORY_BUDGET >> 20)]
    pub memory_mib: usize,
}

impl TileArgs {
    /// `--memory-mib` in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory_mib << 20
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        tiles: TileArgs,
    }

    #[test]
    fn defaults_and_units() {
        let t = Cli::try_parse_from(["x"]).unwrap().tiles;
        assert_eq!(t.max_tile_voxels, 96 * 96 * 96);
        assert_eq!(t.memory_bytes(), crate::engine::DEFAULT_MEMORY_BUDGET);
        let t = Cli::try_parse_from(["x", "--memory-mib", "3", "--max-tile-voxels", "1000"]);
        let t = t.unwrap().tiles;
        assert_eq!((t.max_tile_voxels, t.memory_bytes()), (1000, 3 << 20));
        assert!(Cli::try_parse_from(["x", "--memory-mib", "lots"]).is_err());
    }
}
