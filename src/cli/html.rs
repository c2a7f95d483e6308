//! The self-contained HTML report of an analysis (`tollgate report -o html`, `tollgate analyze
//! -o html`): one page with inline CSS and inline SVG plots, no script, and a Content Security
//! Policy that lets it load nothing, so it can be attached to an incident ticket and opened
//! anywhere, offline.
//!
//! Plots, from the look-by-look record (`status.analysis.series`): the canary's weight, the
//! error rate per arm, each metric's estimate with its anytime-valid band against the tolerance
//! and pass-tolerance lines, each metric's fail and pass e-values against their thresholds (log
//! scale), and latency quantiles per arm. Each series has a marker shape as well as a colour
//! (● canary or the estimate, ▲ baseline or the pass e-value), so the page reads in black and
//! white. Every string that came from outside (names, versions, reasons from a pod, the broker or
//! Prometheus) goes through [`text::for_html`]; plot captions and legends are fixed texts.

use plotters::prelude::*;
use ring::digest;

use crate::analysis::judge::JudgePolicy;
use crate::crd::AnalysisSeries;
use crate::util::text;

/// What the page shows besides the plots; every string is raw (escaped here).
#[derive(Debug, Default, Clone)]
pub struct ReportPage {
    /// Page heading, e.g. `Rollout shop/checkout`.
    pub title: String,
    /// Label and value rows of the summary table.
    pub facts: Vec<(String, String)>,
    /// Per-metric rows: name, verdict, estimate, bounds, e-value, reason.
    pub metrics: Vec<[String; 5]>,
    /// Decision history: time, phase, reason, message.
    pub history: Vec<[String; 4]>,
}

/// The page's only CSS; its hash is the only style the Content Security Policy admits (the
/// dashboard's pages use it too).
pub(crate) const CSS: &str =
    "body{font-family:sans-serif;margin:1.5em;color:#111;max-width:1100px}\
table{border-collapse:collapse;margin:.5em 0 1.5em}\
td,th{border:1px solid #999;padding:.2em .5em;text-align:left;vertical-align:top}\
figure{margin:1em 0;break-inside:avoid}figcaption{font-weight:bold;margin-bottom:.3em}\
.note{color:#444;font-size:.9em}";

const WIDTH: u32 = 720;
const HEIGHT: u32 = 260;
const CANARY: RGBColor = RGBColor(0xb0, 0x30, 0x20);
const BASELINE: RGBColor = RGBColor(0x1f, 0x5f, 0xa8);
const RULE: RGBColor = RGBColor(0x55, 0x55, 0x55);

/// A series' marker: the shape says which series a point is, without colour.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Marker {
    /// ● canary, an estimate, a fail e-value.
    Circle,
    /// ▲ baseline, a pass e-value.
    Triangle,
}

struct Line {
    label: &'static str,
    marker: Marker,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

struct Plot {
    /// Fixed caption text (outside names are escaped by the caller).
    caption: String,
    y_desc: &'static str,
    lines: Vec<Line>,
    /// (x, lower, upper) of a confidence band.
    band: Vec<(f64, f64, f64)>,
    /// Horizontal rules: value and legend text.
    rules: Vec<(f64, &'static str)>,
    /// Values are log10 of the quantity (the axis labels say 1e…).
    log_y: bool,
}

/// Minutes since the record's first look, per entry.
fn minutes(series: &AnalysisSeries) -> Vec<f64> {
    let t0 = series.time.first().copied().unwrap_or(0);
    series.time.iter().map(|t| (t - t0) as f64 / 60.0).collect()
}

/// The (x, y) pairs of a column where it has a finite value.
fn pairs(x: &[f64], ys: impl IntoIterator<Item = Option<f64>>) -> Vec<(f64, f64)> {
    x.iter()
        .zip(ys)
        .filter_map(|(&x, y)| y.filter(|y| y.is_finite()).map(|y| (x, y)))
        .collect()
}

fn ratio(num: Option<f64>, den: Option<f64>) -> Option<f64> {
    match (num, den) {
        (Some(n), Some(d)) if d > 0.0 => Some(n / d),
        _ => None,
    }
}

/// log10 of an e-value, floored so an e-value of 0 still has a point (at 1e-3).
fn log_e(x: Option<f64>) -> Option<f64> {
    x.filter(|x| x.is_finite() && *x >= 0.0)
        .map(|x| x.max(1e-3).log10())
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(if hi == lo { 0.5 } else { 0.0 });
    (lo - pad, hi + pad)
}

impl Plot {
    /// The plot as an SVG element.
    fn svg(&self) -> Result<String, String> {
        let xs = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .chain(self.band.iter().map(|b| b.0));
        let (_, x_hi) = range(xs.chain([0.0]));
        let ys = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .chain(self.band.iter().flat_map(|b| [b.1, b.2]))
            .chain(self.rules.iter().map(|r| r.0));
        let (y_lo, y_hi) = range(ys);
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            let mut chart = ChartBuilder::on(&root)
                .margin(10)
                .x_label_area_size(34)
                .y_label_area_size(56)
                .build_cartesian_2d(0.0..x_hi.max(1.0), y_lo..y_hi)
                .map_err(|e| e.to_string())?;
            let log_y = self.log_y;
            let y_fmt = move |v: &f64| {
                if log_y {
                    format!("1e{v:.0}")
                } else {
                    format!("{v:.3}")
                }
            };
            chart
                .configure_mesh()
                .x_desc("minutes since the first look")
                .y_desc(self.y_desc)
                .y_label_formatter(&y_fmt)
                .light_line_style(WHITE)
                .draw()
                .map_err(|e| e.to_string())?;
            if !self.band.is_empty() {
                let mut outline: Vec<(f64, f64)> = self.band.iter().map(|b| (b.0, b.2)).collect();
                outline.extend(self.band.iter().rev().map(|b| (b.0, b.1)));
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        outline,
                        CANARY.mix(0.15).filled(),
                    )))
                    .map_err(|e| e.to_string())?
                    .label("band: anytime-valid bounds")
                    .legend(|(x, y)| {
                        Rectangle::new([(x, y - 4), (x + 12, y + 4)], CANARY.mix(0.15).filled())
                    });
            }
            for (value, label) in &self.rules {
                chart
                    .draw_series(LineSeries::new(
                        [(0.0, *value), (x_hi.max(1.0), *value)],
                        RULE.stroke_width(1),
                    ))
                    .map_err(|e| e.to_string())?
                    .label(*label)
                    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], RULE));
            }
            for line in &self.lines {
                let color = line.color;
                chart
                    .draw_series(LineSeries::new(line.points.iter().copied(), color))
                    .map_err(|e| e.to_string())?
                    .label(line.label)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], color));
                match line.marker {
                    Marker::Circle => chart.draw_series(
                        line.points
                            .iter()
                            .map(|&p| Circle::new(p, 3, color.filled())),
                    ),
                    Marker::Triangle => chart.draw_series(
                        line.points
                            .iter()
                            .map(|&p| TriangleMarker::new(p, 4, color.filled())),
                    ),
                }
                .map_err(|e| e.to_string())?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(RULE)
                .position(SeriesLabelPosition::UpperLeft)
                .draw()
                .map_err(|e| e.to_string())?;
            root.present().map_err(|e| e.to_string())?;
        }
        Ok(out)
    }

    /// The plot in a figure; `data-points` is how many ● points it has (one per look with a
    /// value), so a reader (or a test) can check it against the record.
    fn figure(&self) -> Result<String, String> {
        let points = self
            .lines
            .iter()
            .find(|l| l.marker == Marker::Circle)
            .map_or(0, |l| l.points.len());
        Ok(format!(
            "<figure data-points=\"{points}\"><figcaption>{}</figcaption>{}</figure>\n",
            self.caption,
            self.svg()?
        ))
    }
}

/// The plots of a record, in page order; `policy` gives each metric's tolerance lines.
fn plots(series: &AnalysisSeries, policy: &JudgePolicy) -> Vec<Plot> {
    let x = minutes(series);
    let mut plots = vec![
        Plot {
            caption: "Canary traffic weight".into(),
            y_desc: "weight (%)",
            lines: vec![Line {
                label: "● canary weight",
                marker: Marker::Circle,
                color: CANARY,
                points: pairs(&x, series.weight.iter().map(|w| Some(f64::from(*w)))),
            }],
            band: Vec::new(),
            rules: Vec::new(),
            log_y: false,
        },
        Plot {
            caption: "Error rate per arm (errors / requests in each look's window)".into(),
            y_desc: "error rate",
            lines: vec![
                Line {
                    label: "● canary",
                    marker: Marker::Circle,
                    color: CANARY,
                    points: pairs(
                        &x,
                        series
                            .canary_errors
                            .iter()
                            .zip(&series.canary_requests)
                            .map(|(e, r)| ratio(*e, *r)),
                    ),
                },
                Line {
                    label: "▲ baseline",
                    marker: Marker::Triangle,
                    color: BASELINE,
                    points: pairs(
                        &x,
                        series
                            .baseline_errors
                            .iter()
                            .zip(&series.baseline_requests)
                            .map(|(e, r)| ratio(*e, *r)),
                    ),
                },
            ],
            band: Vec::new(),
            rules: Vec::new(),
            log_y: false,
        },
    ];
    for m in &series.metrics {
        let name = text::for_html(&m.name);
        let at = |i: usize, c: &[Option<f64>]| c.get(i).copied().flatten();
        let band: Vec<(f64, f64, f64)> = x
            .iter()
            .enumerate()
            .filter_map(|(i, &x)| Some((x, at(i, &m.lower)?, at(i, &m.upper)?)))
            .filter(|b| b.1.is_finite() && b.2.is_finite())
            .collect();
        let mut rules = Vec::new();
        if let Some((tolerance, pass_tolerance)) = policy.decision_points(&m.name) {
            rules.push((tolerance, "tolerance (fail above)"));
            rules.push((pass_tolerance, "pass tolerance (pass below)"));
        }
        plots.push(Plot {
            caption: format!("{name}: estimate with its anytime-valid band"),
            y_desc: "canary / baseline",
            lines: vec![Line {
                label: "● estimate",
                marker: Marker::Circle,
                color: CANARY,
                points: pairs(&x, m.estimate.iter().copied()),
            }],
            band,
            rules,
            log_y: false,
        });
        let mut rules = Vec::new();
        if let Some(t) = m.fail_threshold.and_then(|t| log_e(Some(t))) {
            rules.push((t, "fail threshold"));
        }
        if let Some(t) = m.pass_threshold.and_then(|t| log_e(Some(t))) {
            rules.push((t, "pass threshold"));
        }
        plots.push(Plot {
            caption: format!("{name}: e-values against their thresholds (log scale)"),
            y_desc: "e-value",
            lines: vec![
                Line {
                    label: "● fail e-value",
                    marker: Marker::Circle,
                    color: CANARY,
                    points: pairs(&x, m.e_fail.iter().map(|e| log_e(*e))),
                },
                Line {
                    label: "▲ pass e-value",
                    marker: Marker::Triangle,
                    color: BASELINE,
                    points: pairs(&x, m.e_pass.iter().map(|e| log_e(*e))),
                },
            ],
            band: Vec::new(),
            rules,
            log_y: true,
        });
        if m.canary_quantile
            .iter()
            .chain(&m.baseline_quantile)
            .any(Option::is_some)
        {
            plots.push(Plot {
                caption: format!("{name}: latency quantile per arm"),
                y_desc: "seconds",
                lines: vec![
                    Line {
                        label: "● canary",
                        marker: Marker::Circle,
                        color: CANARY,
                        points: pairs(&x, m.canary_quantile.iter().copied()),
                    },
                    Line {
                        label: "▲ baseline",
                        marker: Marker::Triangle,
                        color: BASELINE,
                        points: pairs(&x, m.baseline_quantile.iter().copied()),
                    },
                ],
                band: Vec::new(),
                rules: Vec::new(),
                log_y: false,
            });
        }
    }
    plots
}

/// A table; the head is fixed text, every cell is escaped.
pub(crate) fn table<const N: usize>(head: [&str; N], rows: &[[String; N]]) -> String {
    let mut out = String::from("<table><tr>");
    for h in head {
        out.push_str(&format!("<th>{h}</th>"));
    }
    out.push_str("</tr>\n");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            out.push_str(&format!("<td>{}</td>", text::for_html(cell)));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

/// The base64 SHA-256 of `text`, as a Content Security Policy's `'sha256-…'` source names it.
pub(crate) fn csp_hash(text: &str) -> String {
    base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        digest::digest(&digest::SHA256, text.as_bytes()),
    )
}

/// The whole page.
pub fn render(
    page: &ReportPage,
    series: Option<&AnalysisSeries>,
    policy: &JudgePolicy,
) -> Result<String, String> {
    render_with(page, series, policy, "", "")
}

/// The whole page with two HTML fragments of the caller's (already escaped): `top` after the
/// heading, `sections` after the summary table.
pub(crate) fn render_with(
    page: &ReportPage,
    series: Option<&AnalysisSeries>,
    policy: &JudgePolicy,
    top: &str,
    sections: &str,
) -> Result<String, String> {
    let csp = format!("default-src 'none'; style-src 'sha256-{}'", csp_hash(CSS));
    let body = content(page, series, policy, top, sections)?;
    Ok(document(&page.title, Some(&csp), &body, ""))
}

/// A page around `body` (already escaped HTML): the head with the CSS, and `tail` (e.g. a
/// script) after the body. `csp`, when given, is repeated in a `<meta>` so a saved file keeps
/// it (our own fixed text: not escaped); a served page sends its own policy as a header.
pub(crate) fn document(title: &str, csp: Option<&str>, body: &str, tail: &str) -> String {
    let title = text::for_html(title);
    let meta = csp
        .map(|c| format!("<meta http-equiv=\"Content-Security-Policy\" content=\"{c}\">\n"))
        .unwrap_or_default();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n{meta}\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title><style>{CSS}</style></head><body>\n{body}{tail}</body></html>\n"
    )
}

/// The page's content (the inside of `<body>`): heading, `top`, summary, `sections`, metrics,
/// plots, decisions.
pub(crate) fn content(
    page: &ReportPage,
    series: Option<&AnalysisSeries>,
    policy: &JudgePolicy,
    top: &str,
    sections: &str,
) -> Result<String, String> {
    let title = text::for_html(&page.title);
    let mut out = format!("<h1>{title}</h1>\n{top}");
    let facts: Vec<[String; 2]> = page
        .facts
        .iter()
        .map(|(k, v)| [k.clone(), v.clone()])
        .collect();
    out.push_str(&table(["", ""], &facts));
    out.push_str(sections);
    if !page.metrics.is_empty() {
        out.push_str("<h2>Metrics at the last look</h2>\n");
        out.push_str(&table(
            ["metric", "verdict", "estimate [bounds]", "e-value", "why"],
            &page.metrics,
        ));
    }
    out.push_str("<h2>Look by look</h2>\n");
    match series.filter(|s| !s.is_empty()) {
        None => out.push_str("<p class=\"note\">No looks recorded.</p>\n"),
        Some(series) => {
            out.push_str(&format!(
                "<p class=\"note\">{} looks (from look {}); ● canary, estimate or fail e-value, ▲ baseline or pass e-value; a gap is a look without data.</p>\n",
                series.len(),
                series.first_look
            ));
            // A plot with no point at all (e.g. a metric without e-values) is left out.
            for plot in plots(series, policy)
                .into_iter()
                .filter(|p| p.lines.iter().any(|l| !l.points.is_empty()))
            {
                out.push_str(&plot.figure()?);
            }
        }
    }
    if !page.history.is_empty() {
        out.push_str("<h2>Decisions</h2>\n");
        out.push_str(&table(["at", "phase", "reason", "message"], &page.history));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{MetricPoint, SeriesPoint};

    fn record(looks: i32) -> AnalysisSeries {
        let mut s = AnalysisSeries::default();
        for look in 1..=looks {
            let f = f64::from(look);
            let point = SeriesPoint {
                canary_requests: Some(300.0),
                canary_errors: Some(3.0 + f),
                baseline_requests: Some(300.0),
                baseline_errors: Some(3.0),
                metrics: vec![
                    MetricPoint {
                        name: "errorRate".into(),
                        estimate: Some(1.0 + f / 10.0),
                        lower: Some(0.5 + f / 20.0),
                        upper: Some(2.0 + f / 10.0),
                        e_fail: Some(f * f),
                        e_pass: Some(1.0 / f),
                        fail_threshold: Some(50.0),
                        pass_threshold: Some(20.0),
                        ..MetricPoint::default()
                    },
                    MetricPoint {
                        name: "latencyP99</title><script>x</script>".into(),
                        estimate: Some(1.0),
                        canary_quantile: Some(0.2),
                        baseline_quantile: Some(0.18),
                        ..MetricPoint::default()
                    },
                ],
            };
            let data = (look != 3).then_some(&point);
            s.push(
                look,
                jiff::Timestamp::from_second(1_800_000_000 + i64::from(look) * 30).unwrap(),
                10 * look,
                data,
            );
        }
        s
    }

    fn count(haystack: &str, needle: &str) -> usize {
        haystack.matches(needle).count()
    }

    #[test]
    fn the_page_is_self_contained_has_no_script_and_one_point_per_look() {
        let page = ReportPage {
            title: "Rollout <b>shop</b>".into(),
            facts: vec![("phase".into(), "RolledBack".into())],
            metrics: vec![[
                "errorRate".into(),
                "Fail".into(),
                "1.5 [1.2, 2.0]".into(),
                "60".into(),
                "pod said <img src=x onerror=alert(1)>".into(),
            ]],
            history: Vec::new(),
        };
        let policy = JudgePolicy::default();
        let html = render(&page, Some(&record(6)), &policy).unwrap();
        let lower = html.to_lowercase();
        assert!(
            !lower.contains("<script") && !lower.contains("<img"),
            "no script, no outside tag"
        );
        for load in [
            " src=\"", " href=\"", "url(", "@import", "<link", "<iframe", "<object",
        ] {
            assert!(!lower.contains(load), "loads nothing: {load}");
        }
        assert!(html.contains("content=\"default-src 'none'; style-src 'sha256-"));
        assert!(html.contains("&lt;b&gt;shop&lt;/b&gt;"));
        // weight, error rate, then per metric: estimate, e-values (left out for the quantile
        // metric, which has none here), latency per arm (the quantile metric only).
        let figures: Vec<&str> = html.split("<figure").skip(1).collect();
        assert_eq!(figures.len(), 2 + 2 + 2, "{}", figures.len());
        assert!(html.contains("latencyP99&lt;/title&gt;&lt;script&gt;"));
        // Look 3 had no data: 6 weights, 5 of everything else.
        assert!(
            figures[0].starts_with(" data-points=\"6\""),
            "{}",
            &figures[0][..40]
        );
        for f in &figures[1..] {
            assert!(f.starts_with(" data-points=\"5\""), "{}", &f[..40]);
        }
        for f in &figures {
            let points: usize = f[14..].split('"').next().unwrap().parse().unwrap();
            assert_eq!(count(f, "<circle"), points, "one ● per look with data");
        }
        // The error-rate plot has its baseline ▲ per look too (triangles are polygons).
        assert!(count(figures[1], "<polygon") >= 5);
    }

    #[test]
    fn an_empty_record_says_so() {
        let html = render(&ReportPage::default(), None, &JudgePolicy::default()).unwrap();
        assert!(html.contains("No looks recorded.") && !html.contains("<figure"));
    }
}
