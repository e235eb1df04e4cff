//! The driver: measuring rows, the table and the JSON file.

use std::fmt::Write as _;
use std::time::Duration;

use crate::*;

pub struct Row {
    pub id: String,
    pub label: String,
    pub unit: &'static str,
    /// Per implementation, the samples (or the reason there are none).
    pub cells: Vec<Cell2>,
}

#[derive(Default, Clone)]
pub struct Cell2 {
    pub samples: Vec<f64>,
    pub failure: Option<String>,
    pub timeout: bool,
    pub na: bool,
}

impl Cell2 {
    pub fn stats(&self) -> Option<(f64, f64, f64)> {
        if self.failure.is_some() || self.timeout || self.na || self.samples.is_empty() {
            return None;
        }
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        let median = if n % 2 == 1 {
            s[n / 2]
        } else {
            (s[n / 2 - 1] + s[n / 2]) / 2.0
        };
        Some((median, s[0], s[n - 1]))
    }
}

/// Runs `w` for every implementation, `rounds` times, rotating the order.
pub fn measure<W: Workload>(
    w: &W,
    cfg: &Config,
    rounds: usize,
    id: &str,
    label: String,
    unit: &'static str,
) -> Option<Row> {
    if !cfg.only.is_empty() && !cfg.only.iter().any(|p| id.starts_with(p.as_str())) {
        return None;
    }
    eprint!("  {id:<6} {label:<44}");
    let mut cells = vec![Cell2::default(); IMPLS.len()];
    for round in 0..rounds {
        for k in 0..IMPLS.len() {
            let idx = (k + round) % IMPLS.len();
            let cell = &mut cells[idx];
            if !cfg.impls.is_empty() && !cfg.impls.iter().any(|i| i == IMPLS[idx]) {
                cell.na = true;
            }
            // A failed or timed-out implementation is not run again.
            if cell.failure.is_some() || cell.timeout || cell.na {
                continue;
            }
            match dispatch(w, cfg, idx) {
                Outcome::Value(v) => cell.samples.push(v),
                Outcome::Fail(why) => cell.failure = Some(why),
                Outcome::Timeout => cell.timeout = true,
                Outcome::NotApplicable => cell.na = true,
            }
        }
        eprint!(".");
    }
    eprintln!();
    Some(Row {
        id: id.into(),
        label,
        unit,
        cells,
    })
}

pub fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v < 0.01 {
        format!("{v:.4}")
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub fn cell_text(row: &Row, idx: usize, budget: Duration) -> String {
    let cell = &row.cells[idx];
    if let Some(why) = &cell.failure {
        return format!("FAIL ({why})");
    }
    if cell.timeout {
        return format!(">{}s budget", budget.as_secs_f64());
    }
    if cell.na {
        return "-".into();
    }
    let Some((med, min, max)) = cell.stats() else {
        return "?".into();
    };
    let base = row.cells[0].stats().map(|s| s.0);
    let ratio = match base {
        Some(b) if b > 0.0 => format!(" x{:.2}", med / b),
        _ => String::new(),
    };
    if min == max {
        format!("{}{ratio}", fmt_num(med))
    } else {
        format!(
            "{} [{}-{}]{ratio}",
            fmt_num(med),
            fmt_num(min),
            fmt_num(max)
        )
    }
}

pub fn print_table(rows: &[Row], cfg: &Config) {
    let label_w = rows
        .iter()
        .map(|r| r.label.len() + r.id.len() + r.unit.len() + 4)
        .max()
        .unwrap_or(10);
    let texts: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            (0..IMPLS.len())
                .map(|i| cell_text(r, i, cfg.budget))
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..IMPLS.len())
        .map(|i| {
            texts
                .iter()
                .map(|t| t[i].len())
                .chain([IMPLS[i].len()])
                .max()
                .unwrap()
        })
        .collect();
    let mut out = String::new();
    let _ = write!(out, "{:<label_w$}", "workload (unit)");
    for (i, name) in IMPLS.iter().enumerate() {
        let _ = write!(out, " | {:<w$}", name, w = widths[i]);
    }
    out.push('\n');
    out.push_str(&"-".repeat(out.len() - 1));
    out.push('\n');
    for (r, t) in rows.iter().zip(&texts) {
        let label = format!("{} {} ({})", r.id, r.label, r.unit);
        let _ = write!(out, "{label:<label_w$}");
        for (i, s) in t.iter().enumerate() {
            let _ = write!(out, " | {:<w$}", s, w = widths[i]);
        }
        out.push('\n');
    }
    println!("{out}");
    println!("cells: median [min-max] xRATIO (median / permits' median); lower is better.");
}

pub fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn write_json(rows: &[Row], cfg: &Config, wall: Duration) -> std::path::PathBuf {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut j = String::new();
    let _ = writeln!(j, "{{");
    let _ = writeln!(j, "  \"quick\": {},", cfg.quick);
    let _ = writeln!(j, "  \"unix_time\": {now},");
    let _ = writeln!(j, "  \"cpu\": {},", json_str(&cpu));
    let _ = writeln!(j, "  \"cores\": {cores},");
    let _ = writeln!(j, "  \"wall_seconds\": {:.1},", wall.as_secs_f64());
    let _ = writeln!(j, "  \"budget_seconds\": {},", cfg.budget.as_secs_f64());
    let names: Vec<String> = IMPLS.iter().map(|n| json_str(n)).collect();
    let _ = writeln!(j, "  \"impls\": [{}],", names.join(", "));
    let _ = writeln!(j, "  \"rows\": [");
    for (ri, r) in rows.iter().enumerate() {
        let _ = writeln!(
            j,
            "    {{\"id\": {}, \"label\": {}, \"unit\": {}, \"cells\": [",
            json_str(&r.id),
            json_str(&r.label),
            json_str(r.unit)
        );
        let base = r.cells[0].stats().map(|s| s.0);
        for (i, c) in r.cells.iter().enumerate() {
            let body = if let Some(why) = &c.failure {
                format!("\"status\": \"fail\", \"reason\": {}", json_str(why))
            } else if c.timeout {
                "\"status\": \"timeout\"".to_string()
            } else if c.na {
                "\"status\": \"n/a\"".to_string()
            } else if let Some((med, min, max)) = c.stats() {
                let ratio = match base {
                    Some(b) if b > 0.0 => format!("{}", med / b),
                    _ => "null".into(),
                };
                let samples: Vec<String> = c.samples.iter().map(|v| format!("{v}")).collect();
                format!(
                    "\"status\": \"ok\", \"median\": {med}, \"min\": {min}, \"max\": {max}, \"ratio\": {ratio}, \"samples\": [{}]",
                    samples.join(", ")
                )
            } else {
                "\"status\": \"missing\"".to_string()
            };
            let comma = if i + 1 < r.cells.len() { "," } else { "" };
            let _ = writeln!(
                j,
                "      {{\"impl\": {}, {body}}}{comma}",
                json_str(IMPLS[i])
            );
        }
        let comma = if ri + 1 < rows.len() { "," } else { "" };
        let _ = writeln!(j, "    ]}}{comma}");
    }
    let _ = writeln!(j, "  ]");
    let _ = writeln!(j, "}}");
    let dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("bench");
    let _ = std::fs::create_dir_all(&dir);
    let name = if cfg.quick {
        "peers-quick.json"
    } else {
        "peers.json"
    };
    let path = dir.join(name);
    std::fs::write(&path, j).expect("write the JSON results");
    path
}
