//! Issue 13's "parsers that never panic": every parser of user input — stack.yaml, env values files
//! (YAML → composed values), `.env`, `--set` expressions, ignore patterns — fed inputs mutated from
//! the repository's own files and the corpora (byte flips, insertions, deletions, duplicated and
//! swapped lines, deep nesting, anchors). Each input must end in a value or an error; no panic, no
//! input may take more than a second. This is deterministic mutation fuzzing, not coverage-guided
//! (cargo-afl over Debian's afl++ 4.04c is not set up yet): a bounded slice runs in CI (`STACK_FUZZ_PARSER_CASES`, default 2000), longer
//! runs with `cargo xtask fuzz-parsers --cases N [--seed S]`.

use crate::support;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// xorshift64*: deterministic, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seeds() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p
                .extension()
                .is_some_and(|x| x == "yaml" || x == "yml" || x == "env")
            {
                out.push(p);
            }
        }
    }
    let root = support::project_root();
    let mut files = vec![
        root.join("stack.yaml"),
        root.join("tests/fixtures/checks.yaml"),
    ];
    for d in ["envs", "charts", "tests/corpus", "kind", "k3d"] {
        walk(&root.join(d), &mut files);
    }
    files.sort();
    files
        .into_iter()
        .filter_map(|f| std::fs::read_to_string(&f).ok().map(|t| (f, t)))
        .collect()
}

const SNIPPETS: [&str; 16] = [
    "&a ", "*a", "<<: *a\n", "{", "}", "[", "]", "- ", ": ", "\n  ", "'", "\"", "\t", "!!int ",
    "? ", ".nan",
];

fn mutate(rng: &mut Rng, text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(7) {
            0 if !bytes.is_empty() => {
                let i = rng.below(bytes.len());
                bytes[i] ^= 1 << rng.below(8);
            }
            1 => {
                let s = SNIPPETS[rng.below(SNIPPETS.len())];
                bytes.splice(at..at, s.bytes());
            }
            2 if !bytes.is_empty() => {
                let end = (at + rng.below(16)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            3 => {
                // Duplicate a line (duplicate keys, repeated anchors).
                let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
                let l = lines[rng.below(lines.len())].to_vec();
                bytes.splice(at..at, l.into_iter().chain([b'\n']));
            }
            4 => {
                // Deep nesting.
                let depth = 1 + rng.below(300);
                let nest: String = "- ".repeat(depth) + "x\n";
                bytes.splice(at..at, nest.bytes());
            }
            5 => {
                // Swap two lines.
                let mut lines: Vec<Vec<u8>> =
                    bytes.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
                let (i, j) = (rng.below(lines.len()), rng.below(lines.len()));
                lines.swap(i, j);
                bytes = lines.join(&b'\n');
            }
            _ => {
                let b = rng.below(256) as u8;
                bytes.insert(at, b);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `--set` texts: the strvals conformance shapes, mutated.
const SET_SEEDS: [&str; 10] = [
    "a=b",
    "a.b[0].c=d,e=f",
    "name={a,b,c}",
    "a\\.b=c",
    "list[2]=x",
    "a.b.c.d.e=1",
    "x=,y=",
    "a[0][1]=2",
    "k=v\\,w",
    "json={\"a\":[1,2]}",
];

#[test]
fn parsers_of_user_input_never_panic_on_mutated_input() {
    let cases: u64 = std::env::var("STACK_FUZZ_PARSER_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let seed: u64 = std::env::var("STACK_FUZZ_PARSER_SEED")
        .ok()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0x5eed_cafe_f00d_u64);
    let mut rng = Rng(seed | 1);
    let seeds = seeds();
    assert!(seeds.len() > 20, "too few seed files: {}", seeds.len());
    let chart =
        stack::values::chart::load(&support::project_root().join("charts/app"), "charts/app")
            .unwrap();
    let file: Arc<str> = Arc::from("fuzz.yaml");
    let mut slowest = (Duration::ZERO, String::new());
    let (mut values_ok, mut errors) = (0u64, 0u64);
    for case in 0..cases {
        let (path, text) = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, text);
        let set_seed = SET_SEEDS[rng.below(SET_SEEDS.len())];
        let set_text = mutate(&mut rng, set_seed);
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut ok = 0;
            let mut err = 0;
            match stack::yaml::parse_values(&file, &input) {
                Ok(doc) => {
                    ok += 1;
                    if let Some(user) = doc.root.value.as_map() {
                        let mut user = user.clone();
                        let set = [stack::values::strvals::SetArg {
                            kind: stack::values::strvals::SetKind::Set,
                            text: set_text.clone(),
                        }];
                        if stack::values::strvals::apply(&mut user, &set, &|_| Ok(String::new()))
                            .is_err()
                        {
                            err += 1;
                        }
                        let composed = stack::values::compose::compose(&chart, &user);
                        let _ = stack::values::compose::path_value(&composed.values, "global");
                    }
                }
                Err(e) => {
                    assert!(
                        e.pos.line >= 1,
                        "an error without a position: {}",
                        e.message
                    );
                    err += 1;
                }
            }
            match stack::config::parse(&file, &input) {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert_eq!(
                        e.exit_code(),
                        2,
                        "stack.yaml error with exit {}: {e}",
                        e.exit_code()
                    );
                    err += 1;
                }
            }
            // Check files: checks, or a located configuration error (exit 2).
            match stack::check::load::parse_file(&file, &input) {
                Ok(_) => ok += 1,
                Err(e) => {
                    assert_eq!(
                        e.exit_code(),
                        2,
                        "check file error with exit {}: {e}",
                        e.exit_code()
                    );
                    err += 1;
                }
            }
            let _ = stack::config::dotenv::parse(&input);
            let mut ignore = ignore::gitignore::GitignoreBuilder::new("/ctx");
            for line in input.lines().take(50) {
                let _ = ignore.add_line(None, line);
            }
            let _ = ignore.build();
            (ok, err)
        }));
        let took = started.elapsed();
        if took > slowest.0 {
            slowest = (took, path.display().to_string());
        }
        match outcome {
            Ok((ok, err)) => {
                values_ok += ok;
                errors += err;
            }
            Err(_) => {
                let keep = std::env::temp_dir().join(format!("stack-fuzz-crash-{case}.yaml"));
                std::fs::write(&keep, &input).unwrap();
                panic!(
                    "case {case} (seed {seed:#x}, from {}) panicked; input kept at {} (--set `{set_text}`)",
                    path.display(),
                    keep.display()
                );
            }
        }
        assert!(
            took < Duration::from_secs(1),
            "case {case} (seed {seed:#x}, from {}) took {took:?}",
            path.display()
        );
    }
    println!(
        "parsers: {cases} mutated inputs (seed {seed:#x}) from {} seed files: {values_ok} parsed, {errors} refused with an error, 0 panics; slowest {:?} ({})",
        seeds.len(),
        slowest.0,
        slowest.1
    );
}
