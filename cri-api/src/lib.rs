//! The Kubernetes Container Runtime Interface, v1: what kubelet, containerd's
//! CRI plugin, our `cri` server and `harness cri` speak to each other.
