//! The sandboxed runtime's supervisor side: the proxy layer between a
//! container and the host kernel. The container's seccomp filter returns
//! `SECCOMP_RET_USER_NOTIF` for the mediated syscalls; the supervisor
//! receives each, resolves its paths inside the container's root as the
//! kernel would, asks the policy, and performs the call on the container's
//! behalf (an opened fd handed in with `SECCOMP_IOCTL_NOTIF_ADDFD`) or
//! refuses it with the policy's errno, writing an audit line for each denial.
//!
//! - `policy`: what is mediated and what is allowed, as data;
//! - `resolve`: paths resolved inside the container's root;
//! - `audit`: the JSON-lines log of denials;
//! - `supervisor`: the notification loop;
//! - `flavor`: what the runtime adds to the shared command line (starting
//!   the supervisor, the mediation filter).

pub mod audit;
pub mod creds;
pub mod flavor;
pub mod mediator;
pub mod policy;
pub mod resolve;
pub mod supervise;
pub mod supervisor;
