//! `harness report` on the published results, as a user runs it: the
//! Markdown and the HTML page, bad input, `--diff`, and the page opened in
//! a headless Chromium (when installed) to check every chart draws.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::harness;

fn reports() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports")
}

const RUNTIMES: [&str; 4] = ["native", "runc", "crun", "runsc"];

fn conform_file(rt: &str) -> String {
    reports().join(format!("conform/{rt}.json")).display().to_string()
}

fn bench_file(run: u32) -> String {
    reports()
        .join(format!("bench/2026-11-29-run{run}.json"))
        .display()
        .to_string()
}

fn json(path: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The charts a bench file should get, counted from the JSON itself: a box
/// plot per lifecycle metric and for density.start, and the overhead bars.
fn expected_charts(bench: &serde_json::Value) -> usize {
    let metrics = bench["metrics"].as_array().unwrap();
    let mut lifecycle: Vec<&str> = metrics
        .iter()
        .filter(|m| m["phase"] == "lifecycle")
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    lifecycle.sort();
    lifecycle.dedup();
    let has = |pred: &dyn Fn(&serde_json::Value) -> bool| usize::from(metrics.iter().any(pred));
    lifecycle.len() + has(&|m| m["id"] == "density.start") + has(&|m| m["phase"] == "overhead")
}

/// `harness report` of the four conform files and bench run 1 into `dir`.
fn render(dir: &Path) {
    let mut args = vec!["report".to_string()];
    args.extend(RUNTIMES.iter().map(|rt| conform_file(rt)));
    args.push(bench_file(1));
    args.extend(["-o".to_string(), dir.display().to_string()]);
    let run = harness(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.code, 0, "stdout: {}\nstderr: {}", run.stdout, run.stderr);
}

#[test]
fn report_of_four_runtimes_and_a_bench_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rep");
    render(&dir);
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();

    // The matrix: a column per runtime in argument order, a row per group,
    // each runtime's totals as its file counts them.
    assert!(md.contains("| group | native | runc | crun | runsc |"), "{md}");
    let native = json(&conform_file("native"));
    let mut groups: Vec<&str> = Vec::new();
    for c in native["cases"].as_array().unwrap() {
        let g = c["group"].as_str().unwrap();
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    assert!(groups.len() > 10, "{groups:?}");
    for g in &groups {
        assert!(md.contains(&format!("| `{g}` |")), "no row for group {g}");
    }
    let totals: Vec<String> = RUNTIMES
        .iter()
        .map(|rt| {
            let s = &json(&conform_file(rt))["summary"];
            format!("**{}/{}/{}**", s["passed"], s["failed"], s["skipped"])
        })
        .collect();
    assert!(md.contains(&format!("| **total** | {} |", totals.join(" | "))), "{md}");
    // Every runtime's failures, with clause, expected and observed.
    let runsc = json(&conform_file("runsc"));
    for c in runsc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "failed")
    {
        let id = c["id"].as_str().unwrap();
        assert!(
            md.contains(&format!("| `{id}` | `{}` |", c["failure"]["clause"].as_str().unwrap())),
            "{id}"
        );
    }
    // The header: each runtime's version and each file's command.
    for rt in RUNTIMES {
        let v = json(&conform_file(rt))["runtime"]["version"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(md.contains(&v), "no version {v}");
    }
    assert!(md.contains("--runtime 'runsc --network=none'"), "{md}");
    // The bench: a table per latency metric, density, overhead.
    for id in ["lifecycle.create", "lifecycle.run", "density.start"] {
        assert!(md.contains(&format!("#### {id}")), "{id}");
    }
    assert!(
        md.contains("| runtime | containers/s |") && md.contains("| getpid | "),
        "{md}"
    );
    assert!(md.contains("[report.html](<report.html>)"), "{md}");
    assert!(!md.contains("<svg"));

    // The page: every chart inline and titled, nothing fetched.
    let n = expected_charts(&json(&bench_file(1)));
    assert_eq!(n, 8);
    assert_eq!(html.matches("<svg class=\"chart\"").count(), n, "charts");
    assert_eq!(html.matches("<title id=").count(), n, "chart titles");
    for bad in ["://", "<link", "src=", "@import", "url("] {
        assert!(!html.contains(bad), "the page references {bad}");
    }
    for rt in RUNTIMES {
        assert!(html.contains(&format!("<th class=\"num\">{rt}</th>")), "{rt} column");
    }
}

#[test]
fn bad_input_exits_2_naming_the_file_and_leaves_no_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.json");
    std::fs::write(&bad, "{\"cases\": [").unwrap();
    let out = tmp.path().join("rep");
    let (o, b) = (out.display().to_string(), bad.display().to_string());
    let native = conform_file("native");
    let run = harness(&["report", &native, &b, "-o", &o]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains(&b), "{}", run.stderr);
    assert!(!out.exists(), "{} was created", out.display());
    let run = harness(&["report", "/no/such/results.json", "--output-dir", &o]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("/no/such/results.json"), "{}", run.stderr);
    assert!(!out.exists());
}

#[test]
fn diff_of_two_bench_runs_lists_every_shared_metric() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("diff");
    let (r1, r2) = (bench_file(1), bench_file(2));
    let run = harness(&["report", "--diff", &r1, &r2, "-o", &out.display().to_string()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let (old, new) = (json(&r1), json(&r2));
    let ids = |v: &serde_json::Value| -> Vec<(String, String)> {
        v["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["id"].as_str().unwrap().into(), m["runtime"].as_str().unwrap().into()))
            .collect()
    };
    let (a, b) = (ids(&old), ids(&new));
    let both: Vec<_> = a.iter().filter(|k| b.contains(k)).collect();
    assert!(both.len() > 50, "{}", both.len());
    for (id, rt) in both {
        assert!(
            run.stdout.contains(&format!("| `{id}` | {rt} | ")),
            "no row for {id} {rt}:\n{}",
            run.stdout
        );
    }
    assert!(run.stdout.contains("new/old [95% CI]"), "{}", run.stdout);
    assert_eq!(std::fs::read_to_string(out.join("diff.md")).unwrap(), run.stdout);
    let html = std::fs::read_to_string(out.join("diff.html")).unwrap();
    assert!(html.contains("<code>lifecycle.create</code>") && !html.contains("://"));
}

#[test]
fn diff_of_two_conform_runs_lists_status_changes() {
    let run = harness(&["report", "--diff", &conform_file("runc"), &conform_file("crun")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    // Fails on runc, passes on crun; and the other way round.
    assert!(
        run.stdout
            .contains("| `create::unsupported_oci_version` | failed | passed |"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("| `delete::created_error` |"),
        "failed on both: no change"
    );
    // The published files are regenerated from time to time: the expected
    // coverage comes from them, not from a copy of today's figures.
    let covered = |rt: &str| {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(conform_file(rt)).unwrap()).unwrap();
        format!("{}/{}", v["summary"]["clauses_covered"], v["summary"]["clauses_total"])
    };
    let row = format!("| clauses covered | {} | {} |", covered("runc"), covered("crun"));
    assert!(run.stdout.contains(&row), "{row} not in {}", run.stdout);
}

#[test]
fn diff_of_conform_against_bench_exits_2_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("diff");
    let (c, b) = (conform_file("runc"), bench_file(1));
    let run = harness(&["report", "--diff", &c, &b, "-o", &out.display().to_string()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains(&c) && run.stderr.contains(&b), "{}", run.stderr);
    assert!(run.stdout.is_empty() && !out.exists());
}

/// Opens the page in headless Chromium: the page's own check must report
/// every chart drawn, nothing may fail in its console, and the screenshot
/// (kept under target/ as an artefact) must have content.
#[test]
fn chromium_draws_every_chart() {
    let Some(chromium) = common::installed("chromium-headless-shell") else {
        println!("skipping: chromium-headless-shell is not on PATH");
        return;
    };
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-artifacts");
    let page = artifacts.join("report");
    let png = artifacts.join("report.png");
    let _ = std::fs::remove_dir_all(&page);
    let _ = std::fs::remove_file(&png);
    std::fs::create_dir_all(&artifacts).unwrap();
    render(&page);
    let n = expected_charts(&json(&bench_file(1)));
    let mut child = Command::new(chromium)
        .args([
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1280,4000",
            "--enable-logging=stderr",
            "--v=0",
            &format!("--screenshot={}", png.display()),
            &format!("file://{}", page.join("report.html").display()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium-headless-shell");
    // Read stderr on a thread so a chatty browser cannot block on the pipe.
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium-headless-shell did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = reader.join().unwrap();
    assert!(status.success(), "chromium exited {status}:\n{stderr}");
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains("INFO:CONSOLE")).collect();
    let ok = format!("report-check: ok {n} charts");
    assert!(console.iter().any(|l| l.contains(&ok)), "no {ok:?} in:\n{stderr}");
    for l in &console {
        let bad = l.to_lowercase().contains("error")
            || l.contains("Uncaught")
            || (l.contains("report-check:") && !l.contains("report-check: ok"));
        assert!(!bad, "console: {l}");
    }
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(size > 10_000, "{} is {size} bytes", png.display());
    println!("screenshot: {}", png.display());
}
