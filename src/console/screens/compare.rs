//! The compare screen: the selected jobs side by side (or every mode of the cursor's method and
//! dataset), one column per job (the mean ± sd over its seeds where it has several), the best
//! accuracy of each row highlighted.
use super::{Shared, View};
use crate::console::snapshot::JobRow;
use crate::console::widgets::{clock, percent, spread, verdict_lines, Theme};
use crate::report::groups;
use crate::report::tables::{self, Stat};
use crate::store::result::{Peaks, RunResult};
use crate::vocab::{FinalAttack, JobName, Mode};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

/// One row of the comparison: its name, each run's value (shown and compared), and whether the
/// highest value is the best (accuracies) or no best is marked (epochs, time).
struct Metric {
    name: &'static str,
    values: Vec<(String, Option<f64>)>,
    mark_best: bool,
}

#[derive(Default)]
pub(super) struct Compare;

impl View for Compare {
    fn draw(&self, frame: &mut Frame, area: Rect, shared: &Shared, theme: Theme) {
        let (what, runs) = compared(shared);
        if runs.is_empty() {
            let lines = vec![
                Line::from(format!("compare {what}: no results yet")),
                Line::from(Span::styled(
                    "select runs with space in the grid, or put the cursor on a method and dataset",
                    theme.dim(),
                )),
            ];
            frame.render_widget(Paragraph::new(lines), area);
            return;
        }
        // The seeds of a job make one column.
        let mut jobs: Vec<Vec<&JobRow>> = Vec::new();
        for run in runs {
            match jobs.iter_mut().find(|group| group[0].job == run.job) {
                Some(group) => group.push(run),
                None => jobs.push(vec![run]),
            }
        }
        let names = column_names(&jobs);
        let groups: Vec<Vec<&RunResult>> = (jobs.iter())
            .map(|group| group.iter().filter_map(|r| r.result.as_deref()).collect())
            .collect();
        let metrics = metrics(&groups, theme);
        let header = Row::new(std::iter::once(String::new()).chain(names)).style(theme.bold());
        let rows = metrics.iter().map(|metric| {
            // A best only where the runs differ: a row of equal values marks nothing.
            let first = metric.values.first().and_then(|(_, v)| *v);
            let differ = metric.values.iter().any(|(_, v)| *v != first);
            let best = metric
                .values
                .iter()
                .filter_map(|(_, v)| *v)
                .reduce(f64::max)
                .filter(|_| metric.mark_best && differ);
            let cells = metric.values.iter().map(|(text, value)| {
                let is_best = best.is_some() && *value == best;
                best_cell(text, is_best, theme)
            });
            Row::new(std::iter::once(Cell::from(metric.name).style(theme.bold())).chain(cells))
        });
        let widths =
            std::iter::once(Constraint::Length(12)).chain(jobs.iter().map(|_| Constraint::Fill(1)));
        let title = format!(" compare {what}: best of each row in bold ");
        let table = Table::new(rows, widths)
            .header(header)
            .block(theme.block(title));
        // Under the table, the evidence of each compared FixRAT/AdaRAT group against a compared
        // baseline of the same settings.
        let collection = groups::of_runs(jobs.iter().flatten().filter_map(|r| r.report_run()));
        let verdict: Vec<String> = (tables::main_tables(&collection).iter())
            .flat_map(verdict_lines)
            .collect();
        let width = area.width.max(1) as usize;
        let height: usize = (verdict.iter())
            .map(|line| line.chars().count().div_ceil(width))
            .sum();
        let [table_area, verdict_area] = Layout::vertical([
            Constraint::Min(0),
            Constraint::Length(height.min(area.height as usize / 2) as u16),
        ])
        .areas(area);
        frame.render_widget(table, table_area);
        let verdict: Vec<Line> = verdict.into_iter().map(Line::from).collect();
        frame.render_widget(Paragraph::new(verdict).wrap(Wrap { trim: false }), verdict_area);
    }
}

/// The runs the screen puts side by side, and what they are: the selected ones, else every mode of
/// the cursor's method and dataset.
fn compared(shared: &Shared) -> (String, Vec<&JobRow>) {
    let selection = shared.selection();
    if !selection.is_empty() {
        let with_results = selection.into_iter().filter(|r| r.result.is_some());
        return ("the selected runs".into(), with_results.collect());
    }
    let Some(cursor) = shared.cursor() else {
        return ("nothing".into(), Vec::new());
    };
    let (method, dataset) = (cursor.job.method, cursor.job.dataset);
    let trio = Mode::ALL.iter().flat_map(|&mode| {
        shared.snapshot().runs_of(JobName {
            method,
            dataset,
            mode,
        })
    });
    let runs = trio.filter(|r| r.result.is_some()).collect();
    (format!("{method} on {dataset}, every mode"), runs)
}

/// The best value: bold and green, and with a `*` in ASCII mode or without colours where bold alone
/// may not show.
fn best_cell(text: &str, is_best: bool, theme: Theme) -> Cell<'static> {
    if !is_best {
        return Cell::from(text.to_string());
    }
    let text = if theme.ascii || !theme.colors {
        format!("{text}*")
    } else {
        text.to_string()
    };
    let style: Style = theme.fg(Color::Green).add_modifier(Modifier::BOLD);
    Cell::from(text).style(style)
}

/// Each job's column heading: the parts of its name that differ between the jobs, and how many
/// seeds it averages where more than one.
fn column_names(jobs: &[Vec<&JobRow>]) -> Vec<String> {
    let first = jobs[0][0].job;
    let same = |part: fn(&JobName) -> String| jobs.iter().all(|g| part(&g[0].job) == part(&first));
    let (same_method, same_dataset, same_mode) = (
        same(|j| j.method.to_string()),
        same(|j| j.dataset.to_string()),
        same(|j| j.mode.to_string()),
    );
    jobs.iter()
        .map(|group| {
            let r = group[0];
            let mut parts = Vec::new();
            if !same_method {
                parts.push(r.job.method.to_string());
            }
            if !same_dataset {
                parts.push(r.job.dataset.to_string());
            }
            if !same_mode || parts.is_empty() {
                parts.push(r.job.mode.to_string());
            }
            let name = parts.join("/");
            match group.len() {
                1 => name,
                n => format!("{name} (n={n})"),
            }
        })
        .collect()
}

/// One job's value of a row: the single run's, or the mean ± sd over its seeds.
fn value(values: &[f64], plain: impl Fn(f64) -> String, theme: Theme) -> (String, Option<f64>) {
    match Stat::of(values) {
        None => ("-".into(), None),
        Some(stat) if stat.n == 1 => (plain(stat.mean), Some(stat.mean)),
        Some(stat) => (spread(&stat, theme), Some(stat.mean)),
    }
}

fn metrics(groups: &[Vec<&RunResult>], theme: Theme) -> Vec<Metric> {
    let accuracy = |name: &'static str, pick: &dyn Fn(&RunResult) -> Option<f64>| Metric {
        name,
        values: (groups.iter())
            .map(|runs| {
                let values: Vec<f64> = runs.iter().filter_map(|r| pick(r)).collect();
                value(&values, |v| percent(Some(v)), theme)
            })
            .collect(),
        mark_best: true,
    };
    let clean = |r: &RunResult| r.final_table.as_ref().and_then(|t| t.clean);
    let attacks = FinalAttack::ALL.iter().map(|attack| {
        let pick = |r: &RunResult| r.final_table.as_ref()?.accuracy(*attack);
        accuracy(attack.info().short, &pick)
    });
    let peaks = |r: &RunResult| r.peaks.or_else(|| Peaks::of(&r.epochs_log));
    let peak_metric = |name: &'static str, pick: fn(&Peaks) -> (f64, usize)| Metric {
        name,
        values: (groups.iter())
            .map(|runs| {
                let found: Vec<(f64, usize)> = runs
                    .iter()
                    .filter_map(|r| peaks(r).map(|p| pick(&p)))
                    .collect();
                let values: Vec<f64> = found.iter().map(|(v, _)| *v).collect();
                let epochs: Vec<f64> = found.iter().map(|(_, e)| *e as f64).collect();
                let (text, mean) = value(&values, |v| format!("{v:.1}"), theme);
                match Stat::of(&epochs) {
                    Some(epoch) => (format!("{text} @{:.0}", epoch.mean), mean),
                    None => (text, mean),
                }
            })
            .collect(),
        mark_best: true,
    };
    let last = |r: &RunResult| r.epochs_log.last().cloned();
    let finals = std::iter::once(accuracy("clean", &clean)).chain(attacks);
    finals
        .chain([
            peak_metric("SA peak", |p| {
                (p.test_clean_acc.value, p.test_clean_acc.epoch)
            }),
            peak_metric("RA peak", |p| (p.test_pgd_acc.value, p.test_pgd_acc.epoch)),
            accuracy("last SA", &|r| last(r).map(|e| e.test_clean_acc)),
            accuracy("last RA", &|r| last(r).map(|e| e.test_pgd_acc)),
            Metric {
                name: "epochs",
                // The least advanced seed's.
                values: (groups.iter())
                    .map(|runs| {
                        let least = runs.iter().min_by_key(|r| r.epochs_done);
                        let text =
                            least.map_or("-".into(), |r| format!("{}/{}", r.epochs_done, r.epochs));
                        (text, None)
                    })
                    .collect(),
                mark_best: false,
            },
            Metric {
                name: "time",
                values: (groups.iter())
                    .map(|runs| {
                        let seconds: Vec<f64> = runs.iter().map(|r| r.seconds).collect();
                        let mean = Stat::of(&seconds).map_or(0.0, |s| s.mean);
                        (clock(mean), None)
                    })
                    .collect(),
                mark_best: false,
            },
        ])
        .collect()
}
