//! Confining child processes: what the `Bash` tool's commands may write and whether they reach the
//! network.
//!
//! A [`Confinement`] names the directories (and files) a process may write below; everything else
//! stays readable and executable but not writable. Unless it allows the network, TCP `connect` and
//! `bind` are refused too. On Linux it is enforced with Landlock (feature `landlock`, on by default),
//! as codex-rs does: the ruleset is applied to a short-lived thread that exists only to start the
//! child, which inherits it; orch's own threads stay unrestricted.
//!
//! What Landlock does not cover: reading (commands can read anything the orch process can), UDP and
//! Unix sockets (only TCP is restricted, from Linux 6.7, Landlock ABI 4), and processes started
//! outside the command (hooks, the Claude Code CLI). Where the kernel lacks Landlock (before Linux
//! 5.13, or not enabled at boot), on other systems and without the feature, the command runs
//! unconfined and [`ConfinementStatus`] says so, so the caller can warn.

use std::path::PathBuf;

/// What a confined child process may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confinement {
    /// Directories (or single files) the process may write below, absolute. Everything else is
    /// read-only for it.
    pub writable: Vec<PathBuf>,
    /// Whether the process may open TCP connections and listen.
    pub network: bool,
}

/// How far a [`Confinement`] was enforced on a child process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfinementStatus {
    /// None was asked for.
    NotRequested,
    /// Everything it asked is enforced.
    Enforced,
    /// Enforced in part; the text says what is not (e.g. an older kernel cannot restrict the network).
    Partial(String),
    /// Not enforced at all; the text says why. The process ran unconfined.
    Unavailable(String),
}

impl ConfinementStatus {
    /// A line for the tool's answer when the confinement asked for is not (fully) in force, else `None`.
    pub fn warning(&self) -> Option<String> {
        match self {
            Self::NotRequested | Self::Enforced => None,
            Self::Partial(what) => Some(format!("warning: the command ran only partly confined: {what}")),
            Self::Unavailable(why) => Some(format!(
                "warning: the command ran unconfined ({why}): it could write outside the working directory and use the network"
            )),
        }
    }
}

/// Applies `confinement` to the calling thread (and so to every process it starts from now on).
/// Call it only on a thread made for that: it cannot be undone.
#[cfg(all(target_os = "linux", feature = "landlock"))]
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) fn restrict_current_thread(confinement: &Confinement) -> ConfinementStatus {
    use landlock::{
        ABI, Access, AccessFs, AccessNet, LandlockStatus, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
        path_beneath_rules,
    };

    // The newest ABI this code knows; older kernels get what they support (best effort), and the
    // status below says what was left out.
    let abi = ABI::V6;
    let apply = || -> Result<landlock::RestrictionStatus, landlock::RulesetError> {
        let mut ruleset = Ruleset::default().handle_access(AccessFs::from_write(abi))?;
        if !confinement.network {
            ruleset = ruleset.handle_access(AccessNet::from_all(abi))?;
        }
        ruleset
            .create()?
            .add_rules(path_beneath_rules(&confinement.writable, AccessFs::from_write(abi)))?
            .restrict_self()
    };
    match apply() {
        Err(e) => ConfinementStatus::Unavailable(format!("Landlock failed: {e}")),
        Ok(status) => match status.ruleset {
            RulesetStatus::FullyEnforced => ConfinementStatus::Enforced,
            RulesetStatus::NotEnforced => ConfinementStatus::Unavailable(match status.landlock {
                LandlockStatus::NotEnabled => {
                    "Landlock is not enabled in this kernel (add `landlock` to the lsm= boot parameter)".into()
                }
                LandlockStatus::NotImplemented => "this kernel has no Landlock (Linux 5.13 or later is needed)".into(),
                _ => "Landlock did not enforce the ruleset".into(),
            }),
            RulesetStatus::PartiallyEnforced => {
                let effective = match status.landlock {
                    LandlockStatus::Available { effective_abi, .. } => Some(effective_abi),
                    _ => None,
                };
                let no_net = !confinement.network && effective.is_some_and(|a| a < ABI::V4);
                ConfinementStatus::Partial(if no_net {
                    "writes are confined, but this kernel's Landlock cannot cut the network (Linux 6.7 or later is needed)".into()
                } else {
                    "this kernel's Landlock cannot restrict every kind of write (e.g. renames across directories or truncation)".into()
                })
            }
        },
    }
}

/// Without Landlock (not Linux, or the `landlock` feature off) nothing can be enforced.
#[cfg(not(all(target_os = "linux", feature = "landlock")))]
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) fn restrict_current_thread(_confinement: &Confinement) -> ConfinementStatus {
    if cfg!(target_os = "linux") {
        ConfinementStatus::Unavailable("orch-core was built without its `landlock` feature".into())
    } else {
        ConfinementStatus::Unavailable("confinement needs Linux's Landlock".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unenforced_confinement_warns() {
        assert_eq!(ConfinementStatus::Enforced.warning(), None);
        assert_eq!(ConfinementStatus::NotRequested.warning(), None);
        let w = ConfinementStatus::Unavailable("no Landlock".into()).warning().unwrap_or_default();
        assert!(w.contains("unconfined (no Landlock)"), "{w}");
        let w = ConfinementStatus::Partial("no network rules".into()).warning().unwrap_or_default();
        assert!(w.contains("partly confined: no network rules"), "{w}");
    }
}
