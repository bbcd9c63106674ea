//! What every screen shares: the theme (glyphs and colours from the settings), number formats, a
//! text progress bar, a one-row sparkline and a small line plot that work in plain ASCII too.
use crate::console::snapshot::JobState;
use crate::vocab::Status;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::{bar, border};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Sparkline, SparklineBar, Widget};

const ASCII_BORDER: border::Set = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

const ASCII_BARS: bar::Set = bar::Set {
    full: "#",
    seven_eighths: "#",
    three_quarters: "|",
    five_eighths: "|",
    half: ":",
    three_eighths: ":",
    one_quarter: ".",
    one_eighth: ".",
    empty: " ",
};

/// The glyphs and colours of the user's settings.
#[derive(Clone, Copy, Debug)]
pub(super) struct Theme {
    pub ascii: bool,
    pub colors: bool,
}

impl Theme {
    /// `±`, or `+-` where only ASCII is safe.
    pub(super) fn plus_minus(self) -> &'static str {
        if self.ascii {
            "+-"
        } else {
            "±"
        }
    }

    /// A colour, or nothing when colours are off.
    pub(super) fn fg(self, color: Color) -> Style {
        if self.colors {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }

    pub(super) fn bold(self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }

    pub(super) fn dim(self) -> Style {
        self.fg(Color::DarkGray)
    }

    pub(super) fn block(self, title: impl Into<Line<'static>>) -> Block<'static> {
        self.block_with(Borders::ALL, title)
    }

    pub(super) fn block_with(
        self,
        borders: Borders,
        title: impl Into<Line<'static>>,
    ) -> Block<'static> {
        let set = if self.ascii {
            ASCII_BORDER
        } else {
            border::PLAIN
        };
        Block::default()
            .borders(borders)
            .border_set(set)
            .border_style(self.dim())
            .title(title)
    }

    /// One character for the state, where a cell has no room for the word.
    pub(super) fn state_glyph(self, state: JobState) -> &'static str {
        match (state, self.ascii) {
            (JobState::NotRun, true) => ".",
            (JobState::NotRun, false) => "·",
            (JobState::Queued, _) => "q",
            (JobState::Run(Status::Running), true) => ">",
            (JobState::Run(Status::Running), false) => "▶",
            (JobState::Run(Status::Completed), true) => "+",
            (JobState::Run(Status::Completed), false) => "✓",
            (JobState::Run(Status::Failed), true) => "!",
            (JobState::Run(Status::Failed), false) => "✗",
            (JobState::Run(Status::Stopped), true) => "=",
            (JobState::Run(Status::Stopped), false) => "■",
        }
    }

    pub(super) fn state_style(self, state: JobState) -> Style {
        match state {
            JobState::NotRun => self.dim(),
            JobState::Queued => self.fg(Color::Cyan),
            JobState::Run(Status::Running) => self.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            JobState::Run(Status::Completed) => self.fg(Color::Green),
            JobState::Run(Status::Failed) => self.fg(Color::Red).add_modifier(Modifier::BOLD),
            JobState::Run(Status::Stopped) => self.fg(Color::Magenta),
        }
    }

    pub(super) fn selected_mark(self) -> &'static str {
        if self.ascii {
            "*"
        } else {
            "●"
        }
    }

    /// Marks a batch on AdaRAT's clean-only branch (the regulariser is off) in the ratio sparkline.
    pub(super) fn clean_only_symbol(self) -> &'static str {
        if self.ascii {
            "c"
        } else {
            "░"
        }
    }

    pub(super) fn clean_only_style(self) -> Style {
        self.fg(Color::Magenta)
    }

    /// `[#####.....]` or its block-glyph form, `width` characters in all.
    pub(super) fn progress_bar(self, done: usize, total: usize, width: usize) -> String {
        let inner = width.saturating_sub(2);
        let filled = (inner * done.min(total)).checked_div(total).unwrap_or(0);
        let (full, empty) = if self.ascii {
            ("#", ".")
        } else {
            ("█", "·")
        };
        format!("[{}{}]", full.repeat(filled), empty.repeat(inner - filled))
    }

    /// A one-row (or taller) sparkline: `None` values draw as the clean-only symbol.
    pub(super) fn sparkline(
        self,
        values: &[Option<f64>],
        max: Option<f64>,
        color: Color,
    ) -> Sparkline<'static> {
        // Sparklines take integers: a thousandth of the largest value is fine enough to see.
        let top = max
            .or_else(|| values.iter().flatten().copied().reduce(f64::max))
            .filter(|top| *top > 0.0)
            .unwrap_or(1.0);
        let scaled: Vec<SparklineBar> = values
            .iter()
            .map(|v| SparklineBar::from(v.map(|v| (v.max(0.0) / top * 1000.0).round() as u64)))
            .collect();
        Sparkline::default()
            .data(scaled)
            .max(1000)
            .style(self.fg(color))
            .bar_set(if self.ascii {
                ASCII_BARS
            } else {
                bar::NINE_LEVELS
            })
            .absent_value_symbol(self.clean_only_symbol())
            .absent_value_style(self.clean_only_style())
    }
}

/// An accuracy (percent) or `-` when there is none.
pub(super) fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

/// A mean over seeds to one decimal, with its sample sd where there are two seeds or more:
/// `45.1±0.3`.
pub(super) fn spread(stat: &crate::report::tables::Stat, theme: Theme) -> String {
    match stat.sd {
        Some(sd) => format!("{:.1}{}{sd:.1}", stat.mean, theme.plus_minus()),
        None => format!("{:.1}", stat.mean),
    }
}

/// The evidence of each FixRAT and AdaRAT row of a main table against its baseline, one line each:
/// `pgd-at adarat vs baseline (paired t, n 3 seeds): clean +4.50 [+1.20, +7.80] p 0.031; AA …`.
pub(super) fn verdict_lines(table: &crate::report::tables::MainTable) -> Vec<String> {
    use crate::report::tables::COLUMNS;
    (table.rows.iter())
        .filter_map(|row| {
            let basis = row.basis()?;
            let cells: Vec<String> = (COLUMNS.iter().zip(&row.evidence))
                .filter_map(|((name, attack), evidence)| {
                    let name = attack.map_or(*name, |a| a.info().short);
                    Some(format!("{name} {}", evidence.as_ref()?.summary()))
                })
                .collect();
            Some(format!(
                "{} {} vs baseline ({basis}): {}",
                row.method,
                row.label(row.mode, table.mixed_presets()),
                cells.join("; ")
            ))
        })
        .collect()
}

/// `h:mm:ss`.
pub(super) fn clock(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60)
}

/// One series of a [`Curves`] plot.
pub(super) struct Series {
    pub glyph: &'static str,
    pub style: Style,
    pub values: Vec<f64>,
    /// Index into `values` drawn with `peak_glyph` and marked on the axis.
    pub peak: Option<usize>,
}

/// A small line plot of per-epoch values: a scale on the left, a point per epoch (epochs share
/// columns when there are more than fit), peaks marked `^` on the bottom axis.
pub(super) struct Curves {
    pub series: Vec<Series>,
    pub ascii: bool,
    pub axis_style: Style,
}

impl Widget for Curves {
    fn render(self, area: Rect, buf: &mut Buffer) {
        const SCALE: u16 = 6;
        if area.width <= SCALE + 2 || area.height < 3 {
            return;
        }
        let all = self.series.iter().flat_map(|s| s.values.iter().copied());
        let (low, high) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        if !low.is_finite() {
            return;
        }
        // Whole fives around the data, so the scale reads easily.
        let low = (low / 5.0).floor() * 5.0;
        let high = ((high / 5.0).ceil() * 5.0).max(low + 5.0);
        let plot = Rect::new(area.x + SCALE, area.y, area.width - SCALE, area.height - 1);
        let axis_y = area.bottom() - 1;
        buf.set_string(area.x, plot.y, format!("{high:>5.0}"), self.axis_style);
        buf.set_string(
            area.x,
            plot.bottom() - 1,
            format!("{low:>5.0}"),
            self.axis_style,
        );
        let rule = if self.ascii { "-" } else { "─" };
        buf.set_string(
            plot.x,
            axis_y,
            rule.repeat(plot.width as usize),
            self.axis_style,
        );
        let column = |index: usize, count: usize| -> u16 {
            if count <= 1 {
                return plot.x;
            }
            plot.x + ((index * (plot.width as usize - 1)) / (count - 1)) as u16
        };
        let row = |value: f64| -> u16 {
            let share = (value - low) / (high - low);
            let from_bottom = (share * f64::from(plot.height - 1)).round() as u16;
            plot.bottom() - 1 - from_bottom.min(plot.height - 1)
        };
        for series in &self.series {
            let count = series.values.len();
            for (index, value) in series.values.iter().enumerate() {
                let style = if series.peak == Some(index) {
                    series.style.add_modifier(Modifier::REVERSED)
                } else {
                    series.style
                };
                buf.set_string(column(index, count), row(*value), series.glyph, style);
            }
            if let Some(peak) = series.peak {
                buf.set_string(column(peak, count), axis_y, "^", series.style);
            }
        }
    }
}
