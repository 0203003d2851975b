use clap::Parser;
use stack::cli::{Cli, Cluster, Command, Init, Live, Test, Validate};
use stack::config::Project;
use stack::error::{Outcome, StackError};
use stack::ops::Report as _;
use stack::values::strvals::{SetArg, SetKind};
use stack::{ops, tool, ui};
use std::process::ExitCode;

/// Stack size of the threads that walk user values (main work, rayon workers).
const WORK_STACK: usize = 256 << 20;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let format = effective_format(&cli);
    ui::set_color(cli.color);
    stack::rt::install_ctrl_c();
    // Values may nest as deep as Helm allows (10 000 levels): the passes over them recurse, so the
    // threads that run them get stacks to match (reserved, not committed, until used).
    let _ = rayon::ThreadPoolBuilder::new()
        .stack_size(WORK_STACK)
        .build_global();
    // A panic is a bug in stack: it gets its own exit code (70), never a user-error code.
    let result = std::thread::Builder::new()
        .name("stack".into())
        .stack_size(WORK_STACK)
        .spawn(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || run(cli, format)))
        })
        .expect("the main work thread starts")
        .join()
        .unwrap_or_else(Err)
        .unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Err(StackError::Internal { message }.into())
        });
    match result {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(err) => {
            ui::print_error(&err, format);
            ExitCode::from(ui::exit_code(&err))
        }
    }
}

/// `--format`, else github for `test` and `validate` inside GitHub Actions, else human.
fn effective_format(cli: &Cli) -> ui::Format {
    cli.format.unwrap_or_else(|| {
        let in_actions = std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true");
        if in_actions && matches!(cli.command, Command::Test(_) | Command::Validate(_)) {
            ui::Format::Github
        } else {
            ui::Format::Human
        }
    })
}

fn run(cli: Cli, format: ui::Format) -> anyhow::Result<Outcome> {
    let root = match &cli.project {
        Some(p) => p.clone(),
        None => std::env::current_dir()?,
    };
    if format == ui::Format::Yaml && !matches!(cli.command, Command::Values(_)) {
        return Err(StackError::Usage {
            message: "--format yaml is for `stack values` only".into(),
            hint: Some("use --format human, json or github".into()),
        }
        .into());
    }
    // The subcommand words (`up`, `live deploy`), for the user agent of stack's API requests.
    let words: Vec<String> = std::env::args()
        .skip(1)
        .skip_while(|a| a.starts_with('-'))
        .take_while(|a| !a.starts_with('-') && a.chars().all(|c| c.is_ascii_lowercase()))
        .take(2)
        .collect();
    stack::kube::set_command(&words.join(" "));
    let view = std::sync::Arc::new(ui::events::View::new(
        format,
        ui::events::Verbosity::from_flags(cli.quiet, cli.verbose),
    ));
    match cli.command {
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "stack",
                &mut out,
            );
            ui::stdout(&String::from_utf8_lossy(&out));
            Ok(Outcome::Clean)
        }
        Command::Schema => {
            stack::outln!(
                "{}",
                serde_json::to_string_pretty(&stack::config::schema())?
            );
            Ok(Outcome::Clean)
        }
        Command::Cluster(cmd) => {
            let project = load(&root)?;
            let host = ops::cluster::Host::from_env(&tool::RealRunner);
            let (up, args) = match cmd {
                Cluster::Status(args) => {
                    let opts = ops::cluster::Options {
                        dry_run: false,
                        context: args.context,
                    };
                    let report = ops::cluster::status(&project, &host, &opts)?;
                    ui::cluster::print_status(&report, format)?;
                    return Ok(report.outcome());
                }
                Cluster::Up(args) => (true, args),
                Cluster::Down(args) => (false, args),
            };
            let opts = ops::cluster::Options {
                dry_run: args.dry_run,
                context: args.context,
            };
            let report = if up {
                ops::cluster::up(&project, &host, &opts, &view)?
            } else {
                ops::cluster::down(&project, &host, &opts, &view)?
            };
            ui::cluster::print_change(&report, format)?;
            Ok(report.outcome())
        }
        Command::Build(args) => {
            let project = load(&root)?;
            let opts = ops::build::Options {
                production: false,
                images: args.images,
                deliver: args.deliver,
                dry_run: args.dry_run,
                context: None,
            };
            let report = ops::build::run(
                &project,
                &opts,
                &tool::Host::from_env(&tool::RealRunner),
                &view,
            )?;
            ui::build::print(&report, format);
            Ok(report.outcome())
        }
        Command::Up(args) => {
            let project = load(&root)?;
            let opts = ops::up::Options {
                dry_run: args.dry_run,
                context: args.context,
            };
            let host = tool::Host::from_env(&tool::RealRunner);
            let report = ops::up::up(&project, &host, &opts, &view)?;
            ui::up::print(&report, format);
            if args.once || args.dry_run {
                return Ok(report.outcome());
            }
            ops::up::session::run(&project, &host, &opts, report, &view)?;
            Ok(Outcome::Clean)
        }
        Command::Down(args) => {
            let project = load(&root)?;
            let opts = ops::up::Options {
                dry_run: args.dry_run,
                context: args.context,
            };
            let done = ops::up::down(
                &project,
                &tool::Host::from_env(&tool::RealRunner),
                &opts,
                args.cluster,
                &view,
            )?;
            ui::up::print_down(&done, format);
            Ok(done.outcome())
        }
        Command::Doctor => {
            let project = load(&root)?;
            let report =
                ops::doctor::run(&project, &ops::cluster::Host::from_env(&tool::RealRunner))?;
            ui::cluster::print_doctor(&report, format)?;
            Ok(report.outcome())
        }
        Command::Promote(args) => {
            let project = load(&root)?;
            let opts = ops::promote::Options {
                from: args.from,
                to: args.to,
                images: args.images,
                chart: args.chart,
                commit: args.commit,
                branch: args.branch,
                force: args.force,
                dry_run: args.dry_run,
                cloud: args.cloud,
            };
            let report = ops::promote::run(
                &project,
                &opts,
                &tool::Host::from_env(&tool::RealRunner),
                &view,
            )?;
            ui::promote::print(&report, format);
            Ok(report.outcome())
        }
        Command::Release(args) => {
            let project = load(&root)?;
            let opts = ops::publish::Options {
                version: args.version,
                registry: args.registry,
                dry_run: args.dry_run,
                update_deps: args.update_deps,
                no_tag: args.no_tag,
            };
            let report = ops::publish::run(
                &project,
                &opts,
                &tool::Host::from_env(&tool::RealRunner),
                &view,
            )?;
            ui::release::print(&report, format);
            Ok(report.outcome())
        }
        Command::Live(cmd) => {
            let project = load(&root)?;
            let host = tool::Host::from_env(&tool::RealRunner);
            match cmd {
                Live::Deploy(args) => {
                    let opts = ops::live::DeployOptions {
                        target: args.target,
                        version: args.version,
                        yes: args.yes,
                        dry_run: args.dry_run,
                    };
                    let report =
                        ops::live::deploy(&project, &host, &opts, &ui::live::confirm, &view)?;
                    ui::live::print_deploy(&report, format);
                    Ok(report.outcome())
                }
                Live::Diff(args) => {
                    let opts = ops::live::DiffOptions {
                        target: args.target,
                        version: args.version,
                    };
                    let report = ops::live::diff(&project, &host, &opts)?;
                    ui::live::print_diff(&report, format);
                    Ok(report.outcome())
                }
                Live::Verify(args) => {
                    let opts = ops::live::VerifyOptions {
                        target: args.target,
                        host: args.host,
                        jobs: args.jobs,
                        timeout: args.timeout.as_deref().map(parse_timeout).transpose()?,
                    };
                    let sink: std::sync::Arc<dyn stack::ops::events::Sink> = view.clone();
                    let report = ops::live::verify(&project, &host, &opts, sink)?;
                    if let Some(path) = &args.junit {
                        ui::test::write_checks_junit(
                            path,
                            &format!("stack live verify {}", report.target),
                            &report.checks,
                            None,
                            report.seconds,
                        )?;
                    }
                    ui::live::print_verify(&report, format);
                    Ok(report.outcome())
                }
                Live::History(args) => {
                    let report = ops::live::history(&project, &host, &args.target)?;
                    ui::live::print_history(&report, format);
                    Ok(report.outcome())
                }
                Live::Rollback(args) => {
                    let opts = ops::live::RollbackOptions {
                        target: args.target,
                        revision: args.revision,
                        yes: args.yes,
                        dry_run: args.dry_run,
                    };
                    let report =
                        ops::live::rollback(&project, &host, &opts, &ui::live::confirm, &view)?;
                    ui::live::print_rollback(&report, format);
                    Ok(report.outcome())
                }
                Live::Recover(args) => {
                    let opts = ops::live::RecoverOptions {
                        target: args.target,
                        yes: args.yes,
                        dry_run: args.dry_run,
                    };
                    let report =
                        ops::live::recover(&project, &host, &opts, &ui::live::confirm, &view)?;
                    ui::live::print_recover(&report, format);
                    Ok(report.outcome())
                }
            }
        }
        Command::Test(cmd) => {
            let project = load(&root)?;
            let host = tool::Host::from_env(&tool::RealRunner);
            let (args, opts) = match cmd {
                Test::Clean(args) => {
                    let opts = ops::test::Options {
                        profile: args.profile,
                        context: args.context,
                        ..Default::default()
                    };
                    let report = ops::test::clean(&project, &host, &opts, &view)?;
                    ui::test::print_clean(&report, format);
                    return Ok(Outcome::Clean);
                }
                Test::Local(args) => {
                    let opts = test_options(ops::test::ProfileName::Local, &args)?;
                    (args, opts)
                }
                Test::Ci(ci) => {
                    let mut opts = test_options(ops::test::ProfileName::Ci, &ci.common)?;
                    opts.chart = ci.chart;
                    opts.chart_version = ci.chart_version;
                    for pair in &ci.images {
                        let (name, reference) =
                            pair.split_once('=').ok_or_else(|| StackError::Usage {
                                message: format!("--image `{pair}` is not NAME=REF"),
                                hint: Some("e.g. --image api=ghcr.io/acme/api:1.4.2".into()),
                            })?;
                        opts.images.push((name.to_owned(), reference.to_owned()));
                    }
                    (ci.common, opts)
                }
            };
            let sink: std::sync::Arc<dyn stack::ops::events::Sink> = view.clone();
            let report = ops::test::run(&project, &host, &opts, sink)?;
            if let Some(path) = &args.junit {
                ui::test::write_junit(path, &report)?;
            }
            ui::test::print(&report, format);
            Ok(report.outcome())
        }
        Command::Init(Init::Github(args)) => {
            let project = load(&root)?;
            let opts = ops::init::Options {
                force: args.force,
                dry_run: args.dry_run,
            };
            let report = ops::init::github(
                &project,
                &opts,
                &tool::Host::from_env(&tool::RealRunner),
                &view,
            )?;
            ui::init::print(&report, format);
            Ok(report.outcome())
        }
        Command::Values(args) => {
            let project = load(&root)?;
            let opts = ops::values::Options {
                target: args.target,
                cloud: args.cloud,
                set: set_args(args.set),
            };
            let report = ops::values::run(&project, &opts)?;
            ui::values::print(&report, format, args.origin);
            Ok(report.outcome())
        }
        Command::Validate(Validate::Envs(args)) => {
            let project = load(&root)?;
            let opts = ops::validate::Options {
                cloud: args.cloud,
                files: args.files,
                helm: args.helm,
                set: set_args(args.set),
                target: None,
            };
            let report = ops::validate::run(&project, &opts, &tool::RealRunner)?;
            ui::print_validate(&report, format)?;
            Ok(report.outcome())
        }
    }
}

/// Helm's value flags as one list (their order within a kind is kept; Helm fixes the order of kinds).
fn set_args(flags: stack::cli::SetFlags) -> Vec<SetArg> {
    let kinds = [
        (SetKind::Set, flags.set),
        (SetKind::String, flags.set_string),
        (SetKind::File, flags.set_file),
        (SetKind::Json, flags.set_json),
        (SetKind::Literal, flags.set_literal),
    ];
    kinds
        .into_iter()
        .flat_map(|(kind, texts)| texts.into_iter().map(move |text| SetArg { kind, text }))
        .collect()
}

fn load(root: &std::path::Path) -> anyhow::Result<Project> {
    if !root.is_dir() {
        return Err(StackError::Usage {
            message: format!("project directory {} does not exist", root.display()),
            hint: None,
        }
        .into());
    }
    Ok(Project::load(root)?)
}

/// The options `stack test local|ci` share.
fn test_options(
    profile: ops::test::ProfileName,
    args: &stack::cli::TestArgs,
) -> Result<ops::test::Options, StackError> {
    let timeout = args.timeout.as_deref().map(parse_timeout).transpose()?;
    Ok(ops::test::Options {
        profile,
        context: args.context.clone(),
        keep: args.keep,
        no_deploy: args.no_deploy,
        jobs: args.jobs,
        timeout,
        artifacts: args.artifacts.clone(),
        ..Default::default()
    })
}

/// `--timeout 10m`.
fn parse_timeout(text: &str) -> Result<std::time::Duration, StackError> {
    stack::check::load::parse_duration(&stack::check::spec::DurationSpec::Text(text.to_owned()))
        .map_err(|m| StackError::Usage {
            message: format!("--timeout: {m}"),
            hint: Some("e.g. --timeout 10m".into()),
        })
}
