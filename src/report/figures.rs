//! The study's figures (`adarat export --plots`, docs/report.md#figures), each as SVG and PNG:
//! per method and dataset the test SA and RA curves of its modes (mean over seeds, a ±sd band, the
//! peaks marked) and the ratio with AdaRAT's clean-only share; the barrier H(L) and its slope; per
//! dataset the trade-off of clean against AutoAttack accuracy.
mod font;

use super::groups::{labelled, Collection, Group};
use super::tables::{self, Stat};
use crate::config::RatioConfig;
use crate::ratio::{barrier_slope, barrier_value};
use crate::store::result::EpochRecord;
use crate::vocab::{DatasetKind, Method, Mode};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

pub use font::FontError;

/// Why the figures could not be drawn or written.
#[derive(thiserror::Error, Debug)]
pub enum FigureError {
    #[error(transparent)]
    Font(#[from] FontError),
    #[error("drawing {name}: {message}")]
    Draw { name: String, message: String },
    #[error("{}: {message}", path.display())]
    Write { path: PathBuf, message: String },
}

/// The folder inside the report folder that holds the figures.
pub const FIGURES_DIR: &str = "figures";

/// The ratio settings a barrier figure is drawn for, and how the figure names them.
#[derive(Clone, Debug, PartialEq)]
pub struct Barrier {
    pub label: String,
    pub ratio: RatioConfig,
}

impl Barrier {
    /// The study's AdaRAT settings: PGD-AT on the grid's first dataset.
    pub fn of_study(study: &crate::config::Study) -> Option<Barrier> {
        let dataset = *study.grid_datasets().first()?;
        let job = crate::vocab::JobName {
            method: Method::PgdAt,
            dataset,
            mode: Mode::AdaRat,
        };
        let cfg = study.resolve(&job, &Default::default()).ok()?;
        Some(Barrier {
            label: format!("{} on {} (configured)", job.method, dataset),
            ratio: cfg.ratio?,
        })
    }
}

/// Draws every figure of the collection into `<out>/figures/`, each as `.svg` and `.png`; returns
/// the files written. `fallback` is drawn as the barrier when no exported AdaRAT run names its own.
pub fn write_all(
    collection: &Collection,
    fallback: Option<Barrier>,
    out: &Path,
) -> Result<Vec<PathBuf>, FigureError> {
    font::register()?;
    let dir = out.join(FIGURES_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| FigureError::Write {
        path: dir.clone(),
        message: e.to_string(),
    })?;
    let mut figures: Vec<Box<dyn Figure>> = Vec::new();
    for (method, dataset, groups) in by_method_and_dataset(collection) {
        let lines = curve_lines(&groups);
        let with_ratio = lines.iter().any(|l| l.ratio.iter().any(Option::is_some));
        if with_ratio {
            figures.push(Box::new(PerEpoch {
                figure: EpochFigure::Ratios,
                method,
                dataset,
                lines: lines.clone(),
            }));
        }
        figures.push(Box::new(PerEpoch {
            figure: EpochFigure::Curves,
            method,
            dataset,
            lines,
        }));
    }
    let mut barriers = barriers(collection);
    if barriers.is_empty() {
        barriers.extend(fallback);
    }
    if !barriers.is_empty() {
        figures.push(Box::new(Barriers(barriers)));
    }
    for table in tables::main_tables(collection) {
        figures.push(Box::new(TradeOff::of(&table)));
    }
    let mut written = Vec::new();
    for figure in &figures {
        written.extend(write(figure.as_ref(), &dir)?);
    }
    Ok(written)
}

/// A figure that draws itself on any plotters backend.
trait Figure {
    /// The file name without extension.
    fn name(&self) -> String;
    fn size(&self) -> (u32, u32) {
        (1200, 480)
    }
    fn draw(&self, root: &Area<'_>) -> Drawn;
}

/// Figures draw on a bitmap (for PNG) and on SVG through one code path: plotters' dynamic
/// dispatch would need a boxed backend, so the two areas are an enum instead.
enum Area<'a> {
    Svg(DrawingArea<SVGBackend<'a>, Shift>),
    Bitmap(DrawingArea<BitMapBackend<'a>, Shift>),
}

type Drawn = Result<(), String>;

fn text(error: impl std::fmt::Display) -> String {
    error.to_string()
}

/// Calls `$body` with `$root` bound to the area's concrete drawing area.
macro_rules! on_area {
    ($area:expr, $root:ident => $body:expr) => {
        match $area {
            Area::Svg($root) => $body,
            Area::Bitmap($root) => $body,
        }
    };
}

fn write(figure: &dyn Figure, dir: &Path) -> Result<Vec<PathBuf>, FigureError> {
    let name = figure.name();
    let drawing = |message: String| FigureError::Draw {
        name: name.clone(),
        message,
    };
    let (width, height) = figure.size();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let area = Area::Svg(root);
        figure.draw(&area).map_err(drawing)?;
        on_area!(&area, root => root.present().map_err(text)).map_err(drawing)?;
    }
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        let area = Area::Bitmap(root);
        figure.draw(&area).map_err(drawing)?;
        on_area!(&area, root => root.present().map_err(text)).map_err(drawing)?;
    }
    let png = encode_png(&pixels, width, height).map_err(drawing)?;
    let mut written = Vec::new();
    for (extension, bytes) in [("svg", svg.into_bytes()), ("png", png)] {
        let path = dir.join(format!("{name}.{extension}"));
        crate::store::write_atomically(&path, &bytes).map_err(|e| FigureError::Write {
            path: path.clone(),
            message: e.to_string(),
        })?;
        written.push(path);
    }
    Ok(written)
}

fn encode_png(pixels: &[u8], width: u32, height: u32) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    let mut writer = encoder.write_header().map_err(text)?;
    writer.write_image_data(pixels).map_err(text)?;
    writer.finish().map_err(text)?;
    Ok(bytes)
}

// What the figures show, gathered from the groups.

/// The groups of each method and dataset in the study's order.
fn by_method_and_dataset(collection: &Collection) -> Vec<(Method, DatasetKind, Vec<&Group>)> {
    let mut found: Vec<(Method, DatasetKind, Vec<&Group>)> = Vec::new();
    for group in tables::ordered(collection) {
        let (method, dataset) = (group.key.method, group.key.dataset);
        match found
            .iter_mut()
            .find(|(m, d, _)| (*m, *d) == (method, dataset))
        {
            Some((_, _, groups)) => groups.push(group),
            None => found.push((method, dataset, vec![group])),
        }
    }
    found
}

/// One group's per-epoch means and spreads over its seeds.
#[derive(Clone, Debug)]
struct Line {
    label: String,
    mode: Mode,
    /// The epochs every seed has (1-indexed, in order), and per epoch over the seeds: test SA and
    /// RA, the mean ratio and the clean-only share.
    epochs: Vec<usize>,
    sa: Vec<Option<Stat>>,
    ra: Vec<Option<Stat>>,
    ratio: Vec<Option<Stat>>,
    share: Vec<Option<Stat>>,
}

fn curve_lines(groups: &[&Group]) -> Vec<Line> {
    groups
        .iter()
        .map(|group| {
            let label = labelled(group.key.mode, group.apart.as_deref());
            let logs: Vec<&[EpochRecord]> = (group.runs.iter())
                .map(|r| r.result.epochs_log.as_slice())
                .collect();
            // The seeds of a group ran the same epochs; the shortest log bounds the curve.
            let length = logs.iter().map(|l| l.len()).min().unwrap_or(0);
            let over = |pick: &dyn Fn(&EpochRecord) -> Option<f64>| -> Vec<Option<Stat>> {
                (0..length)
                    .map(|i| {
                        let values: Vec<f64> = logs.iter().filter_map(|l| pick(&l[i])).collect();
                        Stat::of(&values)
                    })
                    .collect()
            };
            Line {
                label,
                mode: group.key.mode,
                epochs: (0..length).map(|i| logs[0][i].epoch).collect(),
                sa: over(&|r| Some(r.test_clean_acc)),
                ra: over(&|r| Some(r.test_pgd_acc)),
                ratio: over(&|r| r.ratio_mean),
                share: over(&|r| r.clean_branch_share.map(|s| 100.0 * s)),
            }
        })
        .collect()
}

/// The distinct ratio settings of the exported AdaRAT runs, read from their `config.yaml`.
fn barriers(collection: &Collection) -> Vec<Barrier> {
    let mut found: Vec<Barrier> = Vec::new();
    let adarat = (collection.groups.iter()).filter(|g| g.key.mode == Mode::AdaRat);
    for group in adarat {
        let Some(ratio) = (group.runs.iter()).find_map(|run| run.config.as_ref()?.ratio) else {
            continue;
        };
        match found.iter_mut().find(|b| b.ratio == ratio) {
            Some(barrier) => barrier.label += &format!(", {}", group.key.method),
            None => found.push(Barrier {
                label: format!("{} on {}", group.key.method, group.key.dataset),
                ratio,
            }),
        }
    }
    found
}

// Drawing.

/// Colours of the modes, and of further lines past them.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn mode_color(mode: Mode) -> RGBColor {
    PALETTE[Mode::ALL.iter().position(|m| *m == mode).unwrap_or(0)]
}

const FONT: &str = "sans-serif";

/// A dot with its label beside it, clear of the dot (a plotters composed element, whose type is
/// spelled out by the compiler only).
macro_rules! marked {
    ($at:expr, $color:expr, $label:expr) => {
        marked!($at, $color, $label, (9, -16))
    };
    ($at:expr, $color:expr, $label:expr, $offset:expr) => {
        EmptyElement::at($at)
            + Circle::new((0, 0), 6, $color.filled())
            + Text::new($label, $offset, (FONT, 13).into_font().color(&$color))
    };
}

/// Where a peak's label goes, in pixels from its dot: left of it in the right third of the plot
/// (so it stays inside), and one line lower per earlier line so that peaks at the same epoch do
/// not write over each other.
fn label_offset(epoch: f64, last_epoch: f64, line: usize) -> (i32, i32) {
    let x = if epoch > 1.0 + (last_epoch - 1.0) * 2.0 / 3.0 {
        -100
    } else {
        9
    };
    (x, -16 + 15 * line as i32)
}

type Chart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A titled chart over the ranges, with room for the axes' labels.
fn chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
    x: std::ops::Range<f64>,
    y: std::ops::Range<f64>,
) -> Result<Chart<'a, DB>, String> {
    ChartBuilder::on(area)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(x, y)
        .map_err(text)
}

/// The series' names in a box at `position`.
fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    position: SeriesLabelPosition,
) -> Drawn {
    chart
        .configure_series_labels()
        .position(position)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()
        .map_err(text)
}

/// A y range with some room around the values.
fn padded(values: impl Iterator<Item = f64>, floor: Option<f64>) -> std::ops::Range<f64> {
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !low.is_finite() {
        return 0.0..1.0;
    }
    let room = ((high - low) * 0.08).max(0.5);
    let low = floor.map_or(low - room, |f| (low - room).max(f));
    low..high + room
}

/// One panel of per-epoch series: each line its mean, a ±sd band where it has several seeds, and
/// (for accuracies) its peak marked.
fn epoch_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    series: &[(&Line, Vec<(usize, Stat)>)],
    mark_peaks: bool,
) -> Drawn {
    let last = (series.iter())
        .flat_map(|(_, points)| points.iter().map(|(e, _)| *e))
        .max()
        .unwrap_or(1);
    let values = (series.iter()).flat_map(|(_, points)| {
        points
            .iter()
            .flat_map(|(_, s)| [s.mean - s.sd.unwrap_or(0.0), s.mean + s.sd.unwrap_or(0.0)])
    });
    let y = padded(values, Some(0.0));
    let x = 1f64..(last as f64).max(2.0);
    let mut chart = chart(area, title, x, y)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_label)
        .x_labels(last.min(10))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style((FONT, 13))
        .light_line_style(WHITE)
        .draw()
        .map_err(text)?;
    for (index, (line, points)) in series.iter().enumerate() {
        let color = mode_color(line.mode);
        if points.iter().any(|(_, s)| s.sd.is_some()) {
            let upper = points
                .iter()
                .map(|(e, s)| (*e as f64, s.mean + s.sd.unwrap_or(0.0)));
            let lower = points
                .iter()
                .rev()
                .map(|(e, s)| (*e as f64, s.mean - s.sd.unwrap_or(0.0)));
            let band = Polygon::new(
                upper.chain(lower).collect::<Vec<_>>(),
                color.mix(0.18).filled(),
            );
            chart.draw_series(std::iter::once(band)).map_err(text)?;
        }
        let mean: Vec<(f64, f64)> = points.iter().map(|(e, s)| (*e as f64, s.mean)).collect();
        chart
            .draw_series(LineSeries::new(mean.clone(), color.stroke_width(2)))
            .map_err(text)?
            .label(line.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2))
            });
        let peak = mean
            .iter()
            .copied()
            .reduce(|best, p| if p.1 > best.1 { p } else { best });
        if let (true, Some((epoch, value))) = (mark_peaks, peak) {
            let label = format!("peak {epoch:.0}: {value:.1}");
            let offset = label_offset(epoch, last as f64, index);
            chart
                .draw_series(std::iter::once(marked!(
                    (epoch, value),
                    color,
                    label,
                    offset
                )))
                .map_err(text)?;
        }
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

fn points(line: &Line, values: &[Option<Stat>]) -> Vec<(usize, Stat)> {
    (line.epochs.iter().copied().zip(values.iter()))
        .filter_map(|(e, s)| Some((e, (*s)?)))
        .collect()
}

/// The two per-epoch figures of a method on a dataset: the accuracies (the paper's Figure 1) and
/// the ratio.
#[derive(Clone, Copy, Debug, PartialEq)]
enum EpochFigure {
    /// Test SA (left) and RA (right), the peaks marked.
    Curves,
    /// The mean ratio (slope on L_s) and the share of AdaRAT's clean-only batches.
    Ratios,
}

/// One panel of an [`EpochFigure`]: its title after the job's name, its y axis and its series.
struct Panel {
    title: &'static str,
    y_label: &'static str,
    series: fn(&Line) -> &[Option<Stat>],
    mark_peaks: bool,
}

impl EpochFigure {
    fn prefix(self) -> &'static str {
        match self {
            EpochFigure::Curves => "curves",
            EpochFigure::Ratios => "ratio",
        }
    }

    fn panels(self) -> [Panel; 2] {
        match self {
            EpochFigure::Curves => [
                Panel {
                    title: "test SA (clean)",
                    y_label: "accuracy (%)",
                    series: |l| &l.sa,
                    mark_peaks: true,
                },
                Panel {
                    title: "test RA (PGD)",
                    y_label: "accuracy (%)",
                    series: |l| &l.ra,
                    mark_peaks: true,
                },
            ],
            EpochFigure::Ratios => [
                Panel {
                    title: "mean ratio",
                    y_label: "slope on L_s",
                    series: |l| &l.ratio,
                    mark_peaks: false,
                },
                Panel {
                    title: "clean-only batches",
                    y_label: "share (%)",
                    series: |l| &l.share,
                    mark_peaks: false,
                },
            ],
        }
    }
}

struct PerEpoch {
    figure: EpochFigure,
    method: Method,
    dataset: DatasetKind,
    lines: Vec<Line>,
}

impl Figure for PerEpoch {
    fn name(&self) -> String {
        format!("{}-{}-{}", self.figure.prefix(), self.method, self.dataset)
    }

    fn draw(&self, area: &Area<'_>) -> Drawn {
        let what = format!("{} on {}", self.method, self.dataset);
        let [first, second] = self.figure.panels();
        let series = |panel: &Panel| -> Vec<(&Line, Vec<(usize, Stat)>)> {
            (self.lines.iter())
                .map(|l| (l, points(l, (panel.series)(l))))
                .filter(|(_, points)| !points.is_empty())
                .collect()
        };
        on_area!(area, root => {
            root.fill(&WHITE).map_err(text)?;
            let (left, right) = root.split_horizontally(self.size().0 / 2);
            for (half, panel) in [(&left, &first), (&right, &second)] {
                let title = format!("{what}: {}", panel.title);
                epoch_panel(half, &title, panel.y_label, &series(panel), panel.mark_peaks)?;
            }
            Ok(())
        })
    }
}

/// The barrier H(L) = max(0, tan a)^(1+τ) and its slope H'(L) (the paper's Figure 2), for each
/// ratio setting, with d, the clean-only switch and u marked.
struct Barriers(Vec<Barrier>);

impl Barriers {
    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        title: &str,
        value: fn(f64, &RatioConfig) -> f64,
    ) -> Drawn {
        let up = self.0.iter().map(|b| b.ratio.up).fold(0.0, f64::max);
        // tan rises to +∞ at u: the plot stops where the angle is 90 % of the way there.
        let curve = |b: &Barrier| -> Vec<(f64, f64)> {
            let RatioConfig { up, down, .. } = b.ratio;
            let end = down + 0.9 * (up - down);
            (0..=400)
                .map(|i| end * i as f64 / 400.0)
                .map(|l| (l, value(l, &b.ratio)))
                .collect()
        };
        let curves: Vec<Vec<(f64, f64)>> = self.0.iter().map(curve).collect();
        let y = padded(curves.iter().flatten().map(|p| p.1), Some(0.0));
        let mut chart = chart(area, title, 0.0..up, y.clone())?;
        chart
            .configure_mesh()
            .x_desc("standard loss L_s")
            .label_style((FONT, 13))
            .light_line_style(WHITE)
            .draw()
            .map_err(text)?;
        for (index, (barrier, points)) in self.0.iter().zip(curves).enumerate() {
            let color = PALETTE[index % PALETTE.len()];
            let RatioConfig {
                up,
                down,
                tau,
                switch,
                ..
            } = barrier.ratio;
            let label = format!("{}: u {up}, d {down}, τ {tau}", barrier.label);
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(text)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2))
                });
            for (at, name) in [(down, "d"), (switch * up, "switch"), (up, "u")] {
                let rule = PathElement::new(vec![(at, y.start), (at, y.end)], color.mix(0.5));
                let note = Text::new(
                    name.to_string(),
                    (at, y.end),
                    (FONT, 12).into_font().color(&color),
                );
                chart.draw_series([rule]).map_err(text)?;
                chart.draw_series([note]).map_err(text)?;
            }
        }
        legend(&mut chart, SeriesLabelPosition::UpperLeft)
    }
}

impl Figure for Barriers {
    fn name(&self) -> String {
        "barrier".into()
    }

    fn draw(&self, area: &Area<'_>) -> Drawn {
        on_area!(area, root => {
            root.fill(&WHITE).map_err(text)?;
            let (left, right) = root.split_horizontally(self.size().0 / 2);
            self.panel(&left, "barrier H(L)", barrier_value)?;
            self.panel(&right, "its slope H'(L): the ratio on L_s", barrier_slope)
        })
    }
}

/// Clean accuracy against AutoAttack (PGD-20 where no run has AutoAttack) of every method and
/// mode of a dataset.
struct TradeOff {
    dataset: DatasetKind,
    robust_name: &'static str,
    /// (label, mode, clean, robust), means over seeds; the label is the method's, with what
    /// keeps its group apart and, where presets mix, its AutoAttack preset.
    points: Vec<(String, Mode, f64, f64)>,
}

impl TradeOff {
    fn of(table: &tables::MainTable) -> TradeOff {
        let column = |name: &str| tables::COLUMNS.iter().position(|(n, _)| *n == name);
        let (clean, aa, pgd) = (column("clean"), column("AutoAttack"), column("PGD-20"));
        let value =
            |row: &tables::MainRow, c: Option<usize>| c.and_then(|c| row.cells[c]).map(|s| s.mean);
        let with_aa = table.rows.iter().any(|r| value(r, aa).is_some());
        let (robust, robust_name) = if with_aa {
            (aa, "AutoAttack")
        } else {
            (pgd, "PGD-20")
        };
        let points = (table.rows.iter())
            .filter_map(|r| {
                let label = r.label(r.method, with_aa && table.mixed_presets());
                Some((label, r.mode, value(r, clean)?, value(r, robust)?))
            })
            .collect();
        TradeOff {
            dataset: table.dataset,
            robust_name,
            points,
        }
    }
}

impl Figure for TradeOff {
    fn name(&self) -> String {
        format!("tradeoff-{}", self.dataset)
    }

    fn size(&self) -> (u32, u32) {
        (800, 600)
    }

    fn draw(&self, area: &Area<'_>) -> Drawn {
        let x = padded(self.points.iter().map(|p| p.2), Some(0.0));
        let y = padded(self.points.iter().map(|p| p.3), Some(0.0));
        on_area!(area, root => {
            root.fill(&WHITE).map_err(text)?;
            let title = format!("{}: clean vs {} accuracy", self.dataset, self.robust_name);
            let mut chart = chart(root, &title, x.clone(), y.clone())?;
            chart
                .configure_mesh()
                .x_desc("clean accuracy (%)")
                                .y_desc(format!("{} accuracy (%)", self.robust_name))
                .label_style((FONT, 13))
                .light_line_style(WHITE)
                .draw()
                .map_err(text)?;
            for &mode in Mode::ALL {
                let color = mode_color(mode);
                let of_mode: Vec<_> = self.points.iter().filter(|p| p.1 == mode).collect();
                if of_mode.is_empty() {
                    continue;
                }
                                                let dots = (of_mode.iter()).map(|p| marked!((p.2, p.3), color, p.0.clone()));
                chart
                    .draw_series(dots)
                    .map_err(text)?
                    .label(mode.to_string())
                    .legend(move |(x, y)| Circle::new((x + 10, y), 5, color.filled()));
            }
            legend(&mut chart, SeriesLabelPosition::LowerLeft)
        })
    }
}
