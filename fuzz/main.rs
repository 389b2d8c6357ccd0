//! A stable-toolchain mutation fuzzer for Tripline's input loaders (issue #17), and the
//! regression test that replays what it found.
//!
//! `cargo test -p tripline-tests --test fuzz` replays every seed and every input kept in
//! `fuzz/regressions/<target>/` through its target: none may panic. `scripts/suite/fuzz.sh` runs
//! the ignored `mutate` test, which mutates the seeds for `TRIPLINE_FUZZ_SECONDS` (split across
//! the targets) with a seeded generator (`TRIPLINE_FUZZ_SEED`), catching panics; each panicking
//! or hanging input is written to `fuzz/regressions/<target>/` (commit it with the fix) and the
//! run fails. It is not coverage-guided: the mutations are aimed instead, replacing numbers,
//! durations, instants and strings with the values that once broke loaders (i64 edges, 292-year
//! durations, far instants, huge repeats), besides byte-level edits and splices of two seeds.
//!
//! Debug builds check integer overflow, so an overflow is a panic here as it was in `check`.

#[path = "targets.rs"]
mod targets;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use targets::{Target, TARGETS};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files_under(p: &Path, suffix: &str, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for e in entries {
            files_under(&e, suffix, out);
        }
    } else if p.is_file() && p.to_string_lossy().ends_with(suffix) {
        out.push(p.to_path_buf());
    }
}

fn seeds(t: &Target) -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    for (path, suffix) in t.seeds {
        files_under(&repo().join(path), suffix, &mut files);
    }
    assert!(!files.is_empty(), "{}: no seeds", t.name);
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

fn regressions(t: &Target) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    files_under(
        &repo().join("fuzz/regressions").join(t.name),
        "",
        &mut files,
    );
    files
        .into_iter()
        .map(|f| {
            let data = std::fs::read(&f).unwrap();
            (f, data)
        })
        .collect()
}

/// The last panic's message and place, recorded by a quiet hook (the default one would print a
/// backtrace for every caught panic).
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some(info.to_string());
    }));
}

/// Runs one input; `Err(panic message)` if it panicked.
fn run_one(t: &Target, data: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| (t.run)(data))).map_err(|_| {
        LAST_PANIC
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| "(no message)".into())
    })
}

fn save(t: &Target, kind: &str, data: &[u8]) -> PathBuf {
    // FNV-1a: a stable name, so the same input found twice is one file.
    let hash = data.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    });
    let dir = repo().join("fuzz/regressions").join(t.name);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{kind}-{hash:016x}"));
    std::fs::write(&path, data).unwrap();
    path
}

/// xorshift64*: deterministic per seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that broke or could break loaders: integer and duration edges, far instants, odd
/// strings, structure tokens of TOML, JSON and Rhai, matcher operators.
const INTERESTING: &[&str] = &[
    "99999999999999999h",
    "+9223372036854775807s",
    "-9223372036854775808s",
    "+5000000000000000000ms",
    "106751d",
    "106752d",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "4294967296",
    "-1",
    "0",
    "1e309",
    "-1e309",
    "NaN",
    "inf",
    "0.0000001",
    "9999-12-31T23:59:59Z",
    "0000-01-01T00:00:00Z",
    "1970-01-01T00:00:00+23:59",
    "-5m",
    "+5m",
    "5µs",
    "1h1h1h1h",
    "\"\"",
    "[]",
    "{}",
    "#{}",
    "[[case]]",
    "[[case.step]]",
    "[[rule]]",
    "[[receiver]]",
    "[route]",
    "=~",
    "!~",
    "!=",
    ".*",
    "(a|b)*",
    "\\",
    "\"",
    "'",
    "\n",
    "\u{0}",
    "é",
    "* * * * * *",
    "0 0 0 31 2 *",
    "59 59 23 31 12 * 2099",
    "fire(#{ summary: \"x\" });",
    "loop { }",
];

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"+-.:_".contains(&b)
}

/// One to four mutations of `base` (or of a splice of two seeds).
fn mutated(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut d = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let len = d.len();
        match rng.below(9) {
            // Replace a token (a number, duration, instant, word) with an interesting value.
            0..=2 if len > 0 => {
                let mut at = rng.below(len);
                for _ in 0..64 {
                    if is_token_byte(d[at]) {
                        break;
                    }
                    at = rng.below(len);
                }
                let (mut s, mut e) = (at, at);
                while s > 0 && is_token_byte(d[s - 1]) {
                    s -= 1;
                }
                while e < len && is_token_byte(d[e]) {
                    e += 1;
                }
                let v = INTERESTING[rng.below(INTERESTING.len())].as_bytes();
                d.splice(s..e, v.iter().copied());
            }
            // Insert an interesting value anywhere.
            3 => {
                let v = INTERESTING[rng.below(INTERESTING.len())].as_bytes();
                let at = rng.below(len + 1);
                d.splice(at..at, v.iter().copied());
            }
            // Flip, set or insert a byte.
            4 if len > 0 => {
                let at = rng.below(len);
                d[at] ^= 1 << rng.below(8);
            }
            5 => {
                let at = rng.below(len + 1);
                d.insert(at, (rng.next() & 0x7f) as u8);
            }
            // Delete or duplicate a span.
            6 if len > 0 => {
                let s = rng.below(len);
                let e = (s + 1 + rng.below(32)).min(len);
                d.drain(s..e);
            }
            7 if len > 0 => {
                let s = rng.below(len);
                let e = (s + 1 + rng.below(64)).min(len);
                let span: Vec<u8> = d[s..e].to_vec();
                let times = if rng.below(8) == 0 { 200 } else { 1 };
                for _ in 0..times {
                    d.splice(e..e, span.iter().copied());
                }
            }
            // Splice: the head of this input and the tail of another seed.
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(d.len() + 1);
                let from = rng.below(other.len() + 1);
                d.truncate(cut);
                d.extend_from_slice(&other[from..]);
            }
        }
    }
    d.truncate(256 * 1024);
    d
}

#[test]
fn seeds_and_kept_crashes_do_not_panic() {
    quiet_panics();
    let mut failures = Vec::new();
    let mut inputs = 0;
    for t in TARGETS {
        for data in seeds(t) {
            inputs += 1;
            if let Err(p) = run_one(t, &data) {
                failures.push(format!("{} seed: {p}", t.name));
            }
        }
        for (path, data) in regressions(t) {
            inputs += 1;
            if let Err(p) = run_one(t, &data) {
                failures.push(format!("{}: {p}", path.display()));
            }
        }
    }
    assert!(inputs > 0);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The input being run: its target's index in `TARGETS`, and its bytes.
type Running = (usize, Vec<u8>);

/// The bounded mutation run (`scripts/suite/fuzz.sh`).
#[test]
#[ignore]
fn mutate() {
    quiet_panics();
    let total: u64 = std::env::var("TRIPLINE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let seed: u64 = std::env::var("TRIPLINE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(17);
    let only = std::env::var("TRIPLINE_FUZZ_TARGET").ok();
    let targets: Vec<&Target> = TARGETS
        .iter()
        .filter(|t| only.as_deref().is_none_or(|o| o == t.name))
        .collect();
    let budget = Duration::from_secs(total) / targets.len() as u32;

    // A watchdog: an input running over 20 s is a hang; it is kept and the run fails.
    let current: Arc<Mutex<Option<Running>>> = Arc::default();
    let started_ms = Arc::new(AtomicU64::new(u64::MAX));
    let epoch = Instant::now();
    {
        let (current, started_ms) = (current.clone(), started_ms.clone());
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_secs(1));
            let s = started_ms.load(Ordering::SeqCst);
            let now = epoch.elapsed().as_millis() as u64;
            if s != u64::MAX && now.saturating_sub(s) > 20_000 {
                if let Some((i, data)) = current.lock().unwrap().clone() {
                    let path = save(&TARGETS[i], "hang", &data);
                    println!(
                        "{}: an input ran over 20 s: {}",
                        TARGETS[i].name,
                        path.display()
                    );
                    println!("0 passed, 1 failed");
                    std::process::exit(1);
                }
            }
        });
    }

    let (mut passed, mut failed, mut all_inputs) = (0, 0, 0u64);
    for t in targets {
        let index = TARGETS.iter().position(|x| x.name == t.name).unwrap();
        let seeds = seeds(t);
        let mut rng = Rng(seed ^ (index as u64 + 1).wrapping_mul(0x9E3779B97F4A7C15));
        let (mut inputs, mut panics) = (0u64, 0u64);
        let start = Instant::now();
        while start.elapsed() < budget {
            let data = mutated(&mut rng, &seeds);
            *current.lock().unwrap() = Some((index, data.clone()));
            started_ms.store(epoch.elapsed().as_millis() as u64, Ordering::SeqCst);
            let r = run_one(t, &data);
            started_ms.store(u64::MAX, Ordering::SeqCst);
            inputs += 1;
            if let Err(p) = r {
                panics += 1;
                let path = save(t, "crash", &data);
                println!("{}: PANIC {p}\n  input kept in {}", t.name, path.display());
            }
        }
        println!(
            "fuzz {:<15} {inputs:>7} inputs in {:>4.0?}, {panics} panics",
            t.name,
            start.elapsed()
        );
        all_inputs += inputs;
        if panics == 0 {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    println!("fuzz: {all_inputs} inputs over {total} s, seed {seed}");
    println!("{passed} passed, {failed} failed");
    assert_eq!(failed, 0, "panics found: inputs kept in fuzz/regressions/");
}
