//! The one place a configured device meets this machine: [`resolve`] checks a
//! [`DeviceSpec`] against what libtorch sees and gives the `tch::Device` a job runs on.
use crate::config::DeviceSpec;
use tch::Device;

/// A configured device this machine does not have.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum MissingDevice {
    #[error("device `{0}`: CUDA is not available on this machine (use cpu or auto)")]
    NoCuda(DeviceSpec),
    #[error("device `{spec}`: this machine has {count} CUDA device(s)")]
    NoSuchIndex { spec: DeviceSpec, count: usize },
}

/// The device `spec` names on this machine: `auto` is the first CUDA device when there is one.
pub fn resolve(spec: DeviceSpec) -> Result<Device, MissingDevice> {
    let index = match spec {
        DeviceSpec::Auto => return Ok(Device::cuda_if_available()),
        DeviceSpec::Cpu => return Ok(Device::Cpu),
        DeviceSpec::Cuda(index) => index.unwrap_or(0),
    };
    let count = tch::Cuda::device_count() as usize;
    if index < count {
        Ok(Device::Cuda(index))
    } else if count == 0 {
        Err(MissingDevice::NoCuda(spec))
    } else {
        Err(MissingDevice::NoSuchIndex { spec, count })
    }
}

/// A resolved device as results and PyTorch spell it: `cpu` or `cuda:N`.
pub fn name(device: Device) -> String {
    match device {
        Device::Cuda(index) => format!("cuda:{index}"),
        _ => "cpu".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_meet_this_machine() {
        assert_eq!(resolve(DeviceSpec::Cpu), Ok(Device::Cpu));
        assert_eq!(name(Device::Cpu), "cpu");
        assert_eq!(name(Device::Cuda(1)), "cuda:1");
        if !tch::Cuda::is_available() {
            assert_eq!(
                resolve(DeviceSpec::Cuda(None)).unwrap_err().to_string(),
                "device `cuda`: CUDA is not available on this machine (use cpu or auto)"
            );
            assert_eq!(resolve(DeviceSpec::Auto), Ok(Device::Cpu));
        } else {
            let count = tch::Cuda::device_count() as usize;
            assert_eq!(resolve(DeviceSpec::Cuda(None)), Ok(Device::Cuda(0)));
            assert_eq!(
                resolve(DeviceSpec::Cuda(Some(count)))
                    .unwrap_err()
                    .to_string(),
                format!("device `cuda:{count}`: this machine has {count} CUDA device(s)")
            );
        }
    }
}
