fn main() {
    println!("cuda available: {}", tch::Cuda::is_available());
    let t = tch::Tensor::ones([2, 2], (tch::Kind::Float, tch::Device::Cpu));
    println!("{}", f64::try_from(t.sum(tch::Kind::Float)).unwrap());
}
