//! The environment of a step process, built in one place ([`StepEnv::vars`]) for every
//! process Sensei starts for a runbook: `run` steps, rollback commands and `probe` commands.
//!
//! A step never sees Sensei's whole environment: that holds the server's API tokens, hook
//! and signing keys and the SMTP password, and a step's output is readable by every viewer.
//! The process starts from an empty environment and gets, later entries winning:
//!
//! 1. [`INHERITED`] and every `LC_*` variable, as Sensei has them (when set);
//! 2. the variables the configuration passes through by name (`step_env.pass`), minus any
//!    the runbook itself reads a secret from;
//! 3. the runbook's `env`, rendered;
//! 4. Sensei's own step variables: `SENSEI_OUTPUT`, and `SENSEI_CHECKPOINT` (the step's last
//!    recorded checkpoint for an attempt that has one, empty otherwise; see
//!    [`StepEnv::with_checkpoint`]).

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::sync::Arc;

use super::OUTPUT_ENV;

/// The environment variable that holds the step's last recorded checkpoint (SPEC §7): set in
/// every step process, empty when there is none (a checkpoint is never empty), so a script
/// under `set -u` can read it.
pub const CHECKPOINT_ENV: &str = "SENSEI_CHECKPOINT";

/// Variables every step inherits from Sensei's environment when they are set: enough for
/// commands to be found and to behave as in the operator's shell. `LC_*` comes as well.
pub const INHERITED: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TERM",
];

/// True for a variable every step inherits (the fixed list and `LC_*`).
pub fn always_inherited(name: &str) -> bool {
    INHERITED.contains(&name) || name.starts_with("LC_")
}

/// What steps inherit from Sensei's own environment: the fixed list and the configured
/// pass-through names, with the values Sensei had when this was taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inherited {
    vars: Vec<(OsString, OsString)>,
}

impl Inherited {
    /// From this process's environment, with `pass` passed through.
    pub fn from_process(pass: &[String]) -> Inherited {
        Inherited::from_vars(pass, std::env::vars_os())
    }

    /// From `vars` (an environment), keeping [`always_inherited`] names and `pass`.
    pub fn from_vars(
        pass: &[String],
        vars: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Inherited {
        let kept = |name: &OsStr| {
            name.to_str()
                .is_some_and(|n| always_inherited(n) || pass.iter().any(|p| p == n))
        };
        Inherited {
            vars: vars.into_iter().filter(|(name, _)| kept(name)).collect(),
        }
    }

    /// Without the variables named in `withheld` (the secrets a runbook reads).
    pub fn without(&self, withheld: &[String]) -> Inherited {
        Inherited {
            vars: self
                .vars
                .iter()
                .filter(|(name, _)| !withheld.iter().any(|w| OsStr::new(w) == name))
                .cloned()
                .collect(),
        }
    }

    /// The names inherited, in the order of the environment they were taken from.
    pub fn names(&self) -> impl Iterator<Item = &OsStr> {
        self.vars.iter().map(|(name, _)| name.as_os_str())
    }
}

/// A migration's step environment but for the variables of each run: what is inherited and
/// the runbook's rendered `env` (shared), and the checkpoint of the attempt it is for. Cheap
/// to clone.
#[derive(Debug, Clone)]
pub struct StepEnv {
    inner: Arc<Parts>,
    checkpoint: Option<Arc<str>>,
}

#[derive(Debug)]
struct Parts {
    inherited: Inherited,
    runbook: Vec<(String, String)>,
}

impl StepEnv {
    pub fn new(inherited: Inherited, runbook: Vec<(String, String)>) -> StepEnv {
        StepEnv {
            inner: Arc::new(Parts { inherited, runbook }),
            checkpoint: None,
        }
    }

    /// The same environment for an attempt that goes on from `checkpoint` (its step's last
    /// recorded one), as `$SENSEI_CHECKPOINT`.
    pub fn with_checkpoint(&self, checkpoint: Option<&str>) -> StepEnv {
        StepEnv {
            inner: Arc::clone(&self.inner),
            checkpoint: checkpoint.map(Arc::from),
        }
    }

    /// The fixed list from this process's environment, nothing passed through, no runbook
    /// `env`: what a command gets when nothing else is configured.
    pub fn minimal() -> StepEnv {
        StepEnv::new(Inherited::from_process(&[]), Vec::new())
    }

    /// The whole environment of one process: see the module documentation for the order;
    /// a later entry replaces an earlier one of the same name.
    pub fn vars(&self, output_file: &Path) -> Vec<(OsString, OsString)> {
        let inherited = self.inner.inherited.vars.iter().cloned();
        let runbook = self
            .inner
            .runbook
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let checkpoint = self.checkpoint.as_deref().unwrap_or_default();
        let sensei = [
            (
                OsString::from(OUTPUT_ENV),
                output_file.as_os_str().to_owned(),
            ),
            (OsString::from(CHECKPOINT_ENV), OsString::from(checkpoint)),
        ];
        inherited.chain(runbook).chain(sensei).collect()
    }
}

/// Makes this process's environment and memory unreadable to other processes of the same
/// user: a step process could otherwise read Sensei's secrets from `/proc/<ppid>/environ`,
/// whatever environment it was given. On Linux the process is marked not dumpable (so it
/// leaves no core dump either; its children are dumpable again once they `exec`). Elsewhere
/// this does nothing.
pub fn conceal_own_environment() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_dumpable(false).map_err(|e| e.to_string())
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn only_the_fixed_list_lc_and_passed_names_are_inherited() {
        let parent = env(&[
            ("PATH", "/bin"),
            ("LC_TIME", "C"),
            ("SENSEI_TOKEN_ALICE", "secret"),
            ("PGHOST", "db"),
            ("OTHER", "x"),
        ]);
        let inherited = Inherited::from_vars(&["PGHOST".into()], parent);
        let names: Vec<&OsStr> = inherited.names().collect();
        assert_eq!(names, ["PATH", "LC_TIME", "PGHOST"]);
        let withheld = inherited.without(&["PGHOST".into()]);
        assert_eq!(withheld.names().collect::<Vec<_>>(), ["PATH", "LC_TIME"]);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_process_can_conceal_its_environment() {
        assert_eq!(conceal_own_environment(), Ok(()));
        assert_eq!(nix::sys::prctl::get_dumpable(), Ok(false));
    }

    #[test]
    fn the_runbook_env_overrides_what_is_inherited_and_sensei_variables_come_last() {
        let inherited = Inherited::from_vars(&[], env(&[("PATH", "/bin"), ("TZ", "UTC")]));
        let step = StepEnv::new(
            inherited,
            vec![
                ("PATH".into(), "/opt/bin".into()),
                (OUTPUT_ENV.into(), "mine".into()),
                (CHECKPOINT_ENV.into(), "mine too".into()),
            ],
        );
        let vars = step.vars(Path::new("/tmp/out"));
        assert_eq!(
            vars,
            env(&[
                ("PATH", "/bin"),
                ("TZ", "UTC"),
                ("PATH", "/opt/bin"),
                (OUTPUT_ENV, "mine"),
                (CHECKPOINT_ENV, "mine too"),
                (OUTPUT_ENV, "/tmp/out"),
                (CHECKPOINT_ENV, ""),
            ])
        );
        let resumed = step.with_checkpoint(Some("orders:42"));
        let vars = resumed.vars(Path::new("/tmp/out"));
        assert_eq!(
            vars.last(),
            Some(&(CHECKPOINT_ENV.into(), "orders:42".into()))
        );
    }
}
