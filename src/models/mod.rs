//! The networks, with PyTorch state_dict names, saved and loaded as safetensors.
