//! The Study screen: the main table and the peaks of the cursor's dataset, from the completed
//! runs the monitor read (docs/report.md). `E` writes every format into `output/report/`.
use super::{Action, Shared, View};
use crate::console::widgets::{spread, verdict_lines, Theme};
use crate::report::groups;
use crate::report::tables::{self, Stat, COLUMNS};
use crate::vocab::{DatasetKind, FinalAttack};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

/// From this width on, cells show Δ against the baseline beside mean ± sd.
const WIDE: u16 = 120;

#[derive(Default)]
pub(super) struct Study;

impl View for Study {
    fn draw(&self, frame: &mut Frame, area: Rect, shared: &Shared, theme: Theme) {
        let snapshot = shared.snapshot();
        let dataset = (shared.cursor().map(|row| row.job.dataset))
            .or_else(|| snapshot.datasets.first().copied())
            .unwrap_or(DatasetKind::Cifar10);
        let runs = (snapshot.jobs.iter())
            .filter(|row| row.job.dataset == dataset)
            .filter_map(|row| row.report_run());
        let collection = groups::of_runs(runs);
        let main = tables::main_tables(&collection);
        let export = shared.keys().label(Action::Export);
        let pm = theme.plus_minus();
        let title = if area.width >= WIDE {
            let delta = if theme.ascii { "delta" } else { "Δ" };
            format!("{dataset}: mean {pm} sd over n seeds, the best mode of each method in bold, ({delta}) against the baseline  ({export}: export all into output/report/)")
        } else {
            format!("{dataset}: mean{pm}sd over n seeds, best mode bold  ({export}: export)")
        };
        let Some(table) = main.first() else {
            let text = vec![
                Line::from(Span::styled(title, theme.bold())),
                Line::from(format!(
                    "No completed run with a final table on {dataset} yet (the cursor's column sets the dataset)."
                )),
            ];
            frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }), area);
            return;
        };
        let peaks = tables::peaks(&collection);
        // The verdict first, then the notes that qualify the tables.
        let verdict = verdict_lines(table).into_iter().map(Line::from);
        let notes = (table.presets.iter())
            .map(|p| format!("AutoAttack: {p}"))
            .chain(table.notes.iter().cloned())
            .map(|note| Line::from(Span::styled(note, theme.dim())));
        let notes: Vec<Line> = verdict.chain(notes).collect();
        let main_height = table.rows.len() as u16 + 1;
        let peaks_height = peaks.len() as u16 + 2;
        let [title_area, main_area, peaks_area, notes_area] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(main_height),
            Constraint::Length(peaks_height),
            Constraint::Min(0),
        ])
        .areas(area);
        frame.render_widget(
            Paragraph::new(Span::styled(title, theme.bold())),
            title_area,
        );
        frame.render_widget(main_table(table, area.width >= WIDE, theme), main_area);
        frame.render_widget(peaks_table(&peaks, theme), peaks_area);
        frame.render_widget(Paragraph::new(notes).wrap(Wrap { trim: false }), notes_area);
    }
}

/// `±`, or `+-` in plain ASCII.
fn cell(stat: Option<Stat>, delta: Option<f64>, wide: bool, theme: Theme) -> String {
    let Some(stat) = stat else {
        return "-".into();
    };
    let mut text = spread(&stat, theme);
    if let (true, Some(delta)) = (wide, delta) {
        text += &format!(" {delta:+.1}");
    }
    text
}

fn main_table(table: &tables::MainTable, wide: bool, theme: Theme) -> Table<'static> {
    let width = if wide { 15 } else { 8 };
    // At 80 columns an attack's header is its short label, to fit its cells.
    let name = |(label, attack): &(&'static str, Option<FinalAttack>)| match attack {
        Some(attack) if !wide => attack.info().short,
        _ => label,
    };
    let header = Row::new(
        ["method", "mode", "n"]
            .into_iter()
            .chain(COLUMNS.iter().map(name))
            .map(|name| Cell::from(name.to_string())),
    )
    .style(theme.bold());
    let rows = table.rows.iter().map(|row| {
        let mode = row.label(row.mode, table.mixed_presets());
        let mut cells = vec![
            Cell::from(row.method.to_string()),
            Cell::from(mode),
            Cell::from(row.seeds.len().to_string()),
        ];
        for column in 0..COLUMNS.len() {
            let text = cell(row.cells[column], row.delta[column], wide, theme);
            let style = if row.best[column] {
                theme.bold().add_modifier(Modifier::BOLD)
            } else {
                Default::default()
            };
            cells.push(Cell::from(text).style(style));
        }
        Row::new(cells)
    });
    let widths = [
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(2),
    ]
    .into_iter()
    .chain(std::iter::repeat_n(
        Constraint::Length(width),
        COLUMNS.len(),
    ));
    Table::new(rows, widths).header(header)
}

fn peaks_table(peaks: &[tables::PeakRow], theme: Theme) -> Table<'static> {
    let header = Row::new(
        [
            "peaks", "mode", "SA ep", "SA", "RA ep", "RA", "dist", "last SA", "last RA",
        ]
        .map(|name| Cell::from(name.to_string())),
    )
    .style(theme.bold());
    let epoch = |s: Stat| format!("{:.0}", s.mean);
    let rows = peaks.iter().map(|p| {
        Row::new([
            Cell::from(p.method.to_string()),
            Cell::from(p.mode.to_string()),
            Cell::from(epoch(p.sa_epoch)),
            Cell::from(cell(Some(p.sa), None, false, theme)),
            Cell::from(epoch(p.ra_epoch)),
            Cell::from(cell(Some(p.ra), None, false, theme)),
            Cell::from(format!("{:.1}", p.distance.mean)),
            Cell::from(cell(Some(p.last_sa), None, false, theme)),
            Cell::from(cell(Some(p.last_ra), None, false, theme)),
        ])
    });
    let widths = [
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Length(9),
    ];
    Table::new(rows, widths)
        .header(header)
        .block(theme.block_with(ratatui::widgets::Borders::TOP, ""))
}
