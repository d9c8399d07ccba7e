//! Picks the compute device: CUDA when built with `--features cuda`, else a real GPU through
//! wgpu, else the CPU (burn's `flex` backend). The choice is printed at start.

use burn::tensor::Device;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// The best available: cuda (if built in), a wgpu GPU, else the CPU.
    Auto,
    /// NVIDIA GPU through burn-cuda (build with `--features cuda`).
    Cuda,
    /// Any GPU through wgpu (Vulkan, Metal, DX12).
    Wgpu,
    /// CPU (burn's pure-Rust flex backend).
    Cpu,
}

/// The compute device flag, shared by every subcommand.
#[derive(Clone, Copy, Debug, clap::Args)]
pub struct DeviceArgs {
    /// Compute device.
    #[arg(long, value_enum, default_value = "auto")]
    pub backend: BackendChoice,
}

impl DeviceArgs {
    /// The device and a line describing it (see [`select`]).
    pub fn select(self) -> anyhow::Result<(Device, String)> {
        select(self.backend)
    }
}

/// The device and a line describing it.
pub fn select(choice: BackendChoice) -> anyhow::Result<(Device, String)> {
    match choice {
        BackendChoice::Cuda => cuda(),
        BackendChoice::Wgpu => {
            let name = gpu_adapter(true).unwrap_or_else(|| "default adapter".into());
            Ok((
                Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
                format!("wgpu ({name})"),
            ))
        }
        BackendChoice::Cpu => Ok((Device::flex(), cpu_line())),
        BackendChoice::Auto => {
            if cfg!(feature = "cuda") {
                return cuda();
            }
            match gpu_adapter(false) {
                Some(name) => Ok((
                    Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
                    format!("wgpu ({name})"),
                )),
                None => Ok((
                    Device::flex(),
                    format!("{} (no GPU found by wgpu)", cpu_line()),
                )),
            }
        }
    }
}

fn cpu_line() -> String {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("cpu (flex, {threads} threads)")
}

#[cfg(feature = "cuda")]
fn cuda() -> anyhow::Result<(Device, String)> {
    Ok((Device::cuda(0), "cuda (device 0)".into()))
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> anyhow::Result<(Device, String)> {
    anyhow::bail!("this trainer was built without CUDA: rebuild with `--features cuda`")
}

/// Name of the first hardware GPU adapter wgpu can open, if any. Software adapters (llvmpipe,
/// SwiftShader) only count when `allow_software` is set: they are slower than the CPU backend.
fn gpu_adapter(allow_software: bool) -> Option<String> {
    let instance = wgpu::Instance::default();
    let adapters =
        futures_lite::future::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    adapters.into_iter().map(|a| a.get_info()).find_map(|info| {
        let hardware = matches!(
            info.device_type,
            wgpu::DeviceType::DiscreteGpu | wgpu::DeviceType::IntegratedGpu
        );
        (hardware || allow_software).then(|| format!("{} on {:?}", info.name, info.backend))
    })
}
