//! Rendering of `stack cluster up | down | status` and `stack doctor`: human text or one JSON
//! document (`--format github` prints the human text; these commands have no file findings).

use super::{use_color, Format, Styles};
use crate::ops::cluster::{ChangeReport, StatusReport};
use crate::ops::doctor::{Report as DoctorReport, Status};

fn json<T: serde::Serialize>(v: &T) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("report serializes");
    s.push('\n');
    s
}

/// `up` / `down`: the steps run (or, under `--dry-run`, that would run), what was kept and why.
pub fn change_human(r: &ChangeReport, color: bool) -> String {
    let st = Styles::new(color);
    let mut out = format!(
        "{} {} cluster {} {}\n",
        st.bold.apply_to(r.command),
        r.provider,
        st.bold.apply_to(&r.name),
        st.dim.apply_to(format!(
            "(context {}, kubeconfig {})",
            r.context, r.kubeconfig
        ))
    );
    if !r.steps.is_empty() {
        out.push_str(if r.dry_run {
            "dry run — nothing was changed; these steps would run:\n"
        } else {
            "steps run:\n"
        });
    }
    for (i, s) in r.steps.iter().enumerate() {
        out.push_str(&format!("{:>3}. {}\n", i + 1, s.why));
        out.push_str(&format!("     {} {}\n", st.dim.apply_to("$"), s.line));
        if let (true, Some(contents)) = (r.dry_run, &s.contents) {
            for l in contents.lines() {
                out.push_str(&format!("       {}\n", st.dim.apply_to(l)));
            }
        }
    }
    for k in &r.kept {
        out.push_str(&format!("{} {k}\n", st.warning.apply_to("kept:")));
    }
    for n in &r.notes {
        out.push_str(&format!("{} {n}\n", st.info.apply_to("note:")));
    }
    let summary = match (r.steps.len(), r.dry_run) {
        (0, _) => "nothing to do".to_owned(),
        (n, true) => format!("{n} step{} planned", if n == 1 { "" } else { "s" }),
        (n, false) => format!("done: {n} step{}", if n == 1 { "" } else { "s" }),
    };
    out.push_str(&format!("{}\n", st.bold.apply_to(summary)));
    out
}

pub fn print_change(r: &ChangeReport, format: Format) -> std::io::Result<()> {
    let text = match format {
        Format::Json => json(r),
        Format::Human | Format::Github | Format::Yaml => change_human(r, use_color()),
    };
    crate::ui::stdout(&text);
    Ok(())
}

pub fn status_human(r: &StatusReport, color: bool) -> String {
    let st = Styles::new(color);
    let mut out = String::new();
    let state = match (r.exists, r.reachable) {
        (false, _) => st.warning.apply_to("absent".to_owned()),
        (true, Some(true)) => st.bold.apply_to("running, API server reachable".to_owned()),
        (true, Some(false)) => st
            .error
            .apply_to("exists, API server NOT reachable".to_owned()),
        (true, None) => st.bold.apply_to("exists".to_owned()),
    };
    out.push_str(&format!(
        "cluster   {} {}: {state}\n",
        r.provider,
        st.bold.apply_to(&r.name)
    ));
    out.push_str(&format!(
        "context   {} in {} ({}; {})\n",
        r.context,
        r.kubeconfig,
        if r.context_in_kubeconfig {
            "present"
        } else {
            "not present"
        },
        if r.context_allowed {
            "allowed for changes".to_owned()
        } else {
            format!("NOT in the allowlist [{}]", r.allowlist.join(", "))
        }
    ));
    if r.nodes.is_empty() {
        out.push_str("nodes     none\n");
    }
    for (i, n) in r.nodes.iter().enumerate() {
        let ready = match n.ready {
            Some(true) => st.bold.apply_to("Ready"),
            Some(false) => st.error.apply_to("NotReady"),
            None => st.dim.apply_to("unknown"),
        };
        out.push_str(&format!(
            "{}{}  {}  {ready}\n",
            if i == 0 { "nodes     " } else { "          " },
            n.name,
            n.role
        ));
    }
    match &r.registry {
        None => out.push_str("registry  none\n"),
        Some(reg) if !reg.exists => out.push_str(&format!(
            "registry  {} ({}): {}\n",
            reg.name,
            reg.host,
            st.warning.apply_to("absent")
        )),
        Some(reg) => out.push_str(&format!(
            "registry  {} ({}): {}{}, networks [{}], ports [{}]\n",
            reg.name,
            reg.host,
            if reg.running { "running" } else { "stopped" },
            if reg.owned_by_stack {
                ", created by stack"
            } else {
                ""
            },
            reg.networks.join(", "),
            reg.ports.join(", ")
        )),
    }
    if let Some(p) = &r.problem {
        out.push_str(&format!("{} {p}\n", st.error.apply_to("problem:")));
    }
    if !r.exists {
        out.push_str(&format!(
            "{} `stack cluster up` creates it\n",
            st.info.apply_to("hint:")
        ));
    }
    out
}

pub fn print_status(r: &StatusReport, format: Format) -> std::io::Result<()> {
    let text = match format {
        Format::Json => json(r),
        Format::Human | Format::Github | Format::Yaml => status_human(r, use_color()),
    };
    crate::ui::stdout(&text);
    Ok(())
}

pub fn doctor_human(r: &DoctorReport, color: bool) -> String {
    let st = Styles::new(color);
    let width = r.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in &r.checks {
        let word = match c.status {
            Status::Ok => st.bold.apply_to("ok     "),
            Status::Problem => st.error.apply_to("problem"),
            Status::Warning => st.warning.apply_to("warning"),
            Status::Skipped => st.dim.apply_to("skipped"),
        };
        out.push_str(&format!("{word}  {:<width$}  {}", c.name, c.detail));
        if let Some(p) = &c.path {
            out.push_str(&format!("  {}", st.dim.apply_to(p)));
        }
        out.push('\n');
        if c.status != Status::Ok {
            if let Some(f) = &c.fix {
                out.push_str(&format!(
                    "         {:<width$}  {} {f}\n",
                    "",
                    st.info.apply_to("fix:")
                ));
            }
        }
    }
    out.push_str(&format!(
        "{}\n",
        match r.problems {
            0 => st.bold.apply_to("no problems".to_owned()),
            1 => st.error.apply_to("1 problem".to_owned()),
            n => st.error.apply_to(format!("{n} problems")),
        }
    ));
    out
}

pub fn print_doctor(r: &DoctorReport, format: Format) -> std::io::Result<()> {
    let text = match format {
        Format::Json => json(r),
        Format::Human | Format::Github | Format::Yaml => doctor_human(r, use_color()),
    };
    crate::ui::stdout(&text);
    Ok(())
}
