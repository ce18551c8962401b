//! The runner of the test files whose tests need something that may be
//! missing: a real client, tmux, openssl, qemu, a cargo feature, or an
//! explicit request (`POLLEN_INTEROP=1`). Such a file has `harness = false`
//! in Cargo.toml and a `main` that hands its tests to [`run`], which runs
//! them with libtest-mimic, so a test that cannot run is counted by the test
//! runner as *ignored* ("N ignored" in the summary), never as passed.
//!
//! Each test names what it [`Need`]s. At start-up, before any test runs,
//! every need is checked once:
//! - all there: the test runs;
//! - something missing: the test is ignored, and the reason is printed on
//!   stderr (`ignored NAME: aria2c not installed (Debian package aria2)`);
//! - but when the test was asked for (`POLLEN_INTEROP=1`, or a
//!   [`Need::Requested`] variable of its own is set), a missing tool or file
//!   fails it with the reason. A missing cargo feature, or a request of its
//!   own that was not made (`POLLEN_ARM_BIN`), still only ignores it: that
//!   is how the run was configured.
//!
//! libtest's flags keep working: name filters, `--exact`, `--skip`,
//! `--test-threads`, `--list`, `--ignored` and `--include-ignored` (an
//! ignored test run that way fails if its tool is missing, and runs if it
//! was only waiting for its request). Output is not captured.

use std::collections::HashMap;
use std::path::PathBuf;

use libtest_mimic::{Arguments, Failed, Trial};

/// The environment variable that asks for every test to run: the interop
/// tests are switched on, and a missing tool is a failure (`make interop`).
pub const INTEROP_VAR: &str = "POLLEN_INTEROP";

/// Something a test needs besides the pollen binary.
#[derive(Clone, Debug)]
pub enum Need {
    /// An environment variable that switches a slow test on; `how` says
    /// what sets it (`make interop`).
    Requested {
        var: &'static str,
        how: &'static str,
    },
    /// A program on PATH and the Debian package that has it.
    Program {
        name: &'static str,
        package: &'static str,
    },
    /// Debian's `/usr/bin/python3` with its libtorrent module.
    Libtorrent,
    /// A cargo feature of pollen (`enabled` is `cfg!(feature = ...)`).
    Feature { name: &'static str, enabled: bool },
    /// A file made by an earlier step; `how` says which.
    File { path: PathBuf, how: &'static str },
    /// Not runnable yet for the reason given (what `#[ignore = "..."]`
    /// says in a libtest file): ignored even under `POLLEN_INTEROP`, run
    /// by `--ignored` if its tools are there.
    Pending(&'static str),
}

/// `POLLEN_INTEROP=1`, which `make interop` sets.
pub fn interop() -> Need {
    Need::Requested {
        var: INTEROP_VAR,
        how: "make interop",
    }
}

/// `name` on PATH, from the Debian package `package`.
pub fn program(name: &'static str, package: &'static str) -> Need {
    Need::Program { name, package }
}

/// Whether `var` is set to something other than empty or `0`.
pub fn var_is_on(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty() && v != "0")
}

impl Need {
    /// None when present; otherwise why the test cannot run.
    fn missing(&self) -> Option<String> {
        match self {
            Need::Requested { var, how } => {
                (!var_is_on(var)).then(|| format!("run by `{how}`, which sets {var}"))
            }
            Need::Program { name, package } => (!super::have_program(name))
                .then(|| format!("{name} not installed (Debian package {package})")),
            Need::Libtorrent => (!super::have_libtorrent()).then(|| {
                "/usr/bin/python3 has no libtorrent module (Debian package python3-libtorrent)"
                    .to_string()
            }),
            Need::Feature { name, enabled } => {
                (!enabled).then(|| format!("pollen built without the cargo feature {name}"))
            }
            Need::File { path, how } => {
                (!path.is_file()).then(|| format!("{} not found ({how})", path.display()))
            }
            Need::Pending(why) => Some(why.to_string()),
        }
    }
}

/// One test: its name (as filters see it), what it needs, and its body,
/// which passes by returning and fails by panicking, as a `#[test]` does.
pub struct Test {
    pub name: &'static str,
    pub needs: Vec<Need>,
    pub body: fn(),
}

/// `trial!(function, [needs...])`: a [`Test`] named after the function.
#[allow(unused_macros)] // test files that keep libtest's harness
macro_rules! trial {
    ($body:ident, [$($need:expr),* $(,)?]) => {
        $crate::common::harness::Test {
            name: stringify!($body),
            needs: vec![$($need),*],
            body: $body,
        }
    };
}
#[allow(unused_imports)]
pub(crate) use trial;

/// What start-up decided for one test.
enum Plan {
    Run,
    /// Not run unless `--ignored`; then it runs (only a request was missing)
    /// or fails with the reason (a tool was missing).
    Ignore {
        reason: String,
        runnable: bool,
    },
    /// Asked for but something is missing.
    Fail(String),
}

/// Decides whether `test` runs, checking each need once per process (`seen`).
fn plan(test: &Test, seen: &mut HashMap<String, Option<String>>) -> Plan {
    let mut features = Vec::new();
    let mut requests = Vec::new();
    let mut tools = Vec::new();
    let mut asked = var_is_on(INTEROP_VAR);
    for need in &test.needs {
        let missing = seen
            .entry(format!("{need:?}"))
            .or_insert_with(|| need.missing())
            .clone();
        match need {
            Need::Requested { var, .. } => {
                asked |= var_is_on(var);
                requests.extend(missing);
            }
            Need::Pending(_) => requests.extend(missing),
            Need::Feature { .. } => features.extend(missing),
            _ => tools.extend(missing),
        }
    }
    if !features.is_empty() {
        // Built without what the test checks: nothing to run, whatever was asked.
        return Plan::Ignore {
            reason: features.join("; "),
            runnable: false,
        };
    }
    if !requests.is_empty() {
        // Not asked for (a request of its own that `POLLEN_INTEROP` does not make).
        return Plan::Ignore {
            runnable: tools.is_empty(),
            reason: requests
                .into_iter()
                .chain(tools)
                .collect::<Vec<_>>()
                .join("; "),
        };
    }
    match (tools.is_empty(), asked) {
        (true, _) => Plan::Run,
        (false, true) => Plan::Fail(tools.join("; ")),
        (false, false) => Plan::Ignore {
            runnable: false,
            reason: tools.join("; "),
        },
    }
}

/// Runs `tests` as libtest would (same flags, same summary) and exits.
pub fn run(tests: Vec<Test>) -> ! {
    let args = Arguments::from_args();
    let mut seen = HashMap::new();
    let trials: Vec<(Trial, Option<String>)> = tests
        .into_iter()
        .map(|test| {
            let body = test.body;
            match plan(&test, &mut seen) {
                Plan::Run => (Trial::test(test.name, move || run_body(body)), None),
                Plan::Fail(reason) => (
                    Trial::test(test.name, move || {
                        Err(
                            format!("cannot run: {reason} (asked for, so that is a failure)")
                                .into(),
                        )
                    }),
                    None,
                ),
                Plan::Ignore { reason, runnable } => {
                    let why = reason.clone();
                    let trial = Trial::test(test.name, move || {
                        if runnable {
                            run_body(body)
                        } else {
                            Err(format!("cannot run: {why}").into())
                        }
                    });
                    (trial.with_ignored_flag(true), Some(reason))
                }
            }
        })
        .collect();
    if !args.list {
        for (trial, reason) in &trials {
            if let Some(reason) = reason {
                if !args.is_filtered_out(trial) {
                    eprintln!("ignored {}: {reason}", trial.name());
                }
            }
        }
    }
    let trials = trials.into_iter().map(|(trial, _)| trial).collect();
    libtest_mimic::run(&args, trials).exit()
}

/// Runs a test body; a panic is its failure (libtest-mimic reports it).
fn run_body(body: fn()) -> Result<(), Failed> {
    body();
    Ok(())
}
