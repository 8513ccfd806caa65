//! A small SVG writer: shapes, text (escaped), and a line chart with linear or log axes.
//! Output is a standalone document (no scripts, no external references), so a browser, an
//! image viewer or a Markdown page shows it as is.

use std::fmt::Write as _;

/// Escapes text for XML.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// An SVG document being drawn.
pub struct Svg {
    /// Width, pixels.
    pub width: f64,
    /// Height, pixels.
    pub height: f64,
    body: String,
}

/// A palette that reads on white and for the common colour-blindnesses (Okabe–Ito).
pub const COLORS: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
];

impl Svg {
    /// An empty canvas.
    pub fn new(width: f64, height: f64) -> Self {
        Self {
            width,
            height,
            body: String::new(),
        }
    }

    /// A rectangle, with a tooltip when `title` is given.
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, title: Option<&str>) {
        let _ = write!(
            self.body,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{fill}">"#,
            w.max(0.0),
            h.max(0.0)
        );
        if let Some(t) = title {
            let _ = write!(self.body, "<title>{}</title>", esc(t));
        }
        self.body.push_str("</rect>\n");
    }

    /// A line.
    #[allow(clippy::too_many_arguments)] // An SVG line's own attributes, in their order.
    pub fn line(
        &mut self,
        x1: f64,
        y1: f64,
        x2: f64,
        y2: f64,
        stroke: &str,
        width: f64,
        dash: bool,
    ) {
        let d = if dash {
            r#" stroke-dasharray="5,4""#
        } else {
            ""
        };
        let _ = writeln!(
            self.body,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{stroke}" stroke-width="{width}"{d}/>"#
        );
    }

    /// A polyline through `pts`.
    pub fn polyline(&mut self, pts: &[(f64, f64)], stroke: &str, width: f64, dash: bool) {
        if pts.is_empty() {
            return;
        }
        let d = if dash {
            r#" stroke-dasharray="6,4""#
        } else {
            ""
        };
        let p: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = writeln!(
            self.body,
            r#"<polyline points="{}" fill="none" stroke="{stroke}" stroke-width="{width}"{d}/>"#,
            p.join(" ")
        );
    }

    /// A circle, with a tooltip when `title` is given.
    pub fn circle(&mut self, cx: f64, cy: f64, r: f64, fill: &str, title: Option<&str>) {
        let _ = write!(
            self.body,
            r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="{r}" fill="{fill}">"#
        );
        if let Some(t) = title {
            let _ = write!(self.body, "<title>{}</title>", esc(t));
        }
        self.body.push_str("</circle>\n");
    }

    /// A path (SVG path data), with a tooltip when `title` is given.
    pub fn path(&mut self, d: &str, fill: &str, opacity: f64, title: Option<&str>) {
        let _ = write!(
            self.body,
            r#"<path d="{d}" fill="{fill}" fill-opacity="{opacity}">"#
        );
        if let Some(t) = title {
            let _ = write!(self.body, "<title>{}</title>", esc(t));
        }
        self.body.push_str("</path>\n");
    }

    /// Text; `anchor` is start, middle or end.
    pub fn text(&mut self, x: f64, y: f64, s: &str, size: f64, anchor: &str, fill: &str) {
        let _ = writeln!(
            self.body,
            r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="{anchor}" fill="{fill}">{}</text>"#,
            esc(s)
        );
    }

    /// Text turned 90° counter-clockwise around (x, y).
    pub fn vtext(&mut self, x: f64, y: f64, s: &str, size: f64) {
        let _ = writeln!(
            self.body,
            r##"<text x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="middle" fill="#333" transform="rotate(-90 {x:.1} {y:.1})">{}</text>"##,
            esc(s)
        );
    }

    /// The document.
    pub fn finish(self) -> String {
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif">
<rect width="{w}" height="{h}" fill="white"/>
{body}</svg>
"#,
            w = self.width,
            h = self.height,
            body = self.body
        )
    }
}

/// One series of a line chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// The legend's name.
    pub name: String,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
    /// Drawn dashed.
    pub dashed: bool,
    /// Draw a dot at each point, with a tooltip from `labels` when given.
    pub dots: bool,
    /// Labels drawn at the points, in order.
    pub labels: Vec<String>,
}

impl Series {
    /// A solid series.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points,
            dashed: false,
            dots: false,
            labels: Vec::new(),
        }
    }
}

/// A vertical (x) or horizontal (y) reference line with a label.
#[derive(Debug, Clone)]
pub struct Marker {
    /// A vertical line at x, if given.
    pub x: Option<f64>,
    /// A horizontal line at y, if given.
    pub y: Option<f64>,
    /// The marker's label.
    pub label: String,
}

/// A line chart.
#[derive(Debug, Clone, Default)]
pub struct LineChart {
    /// The plot's title.
    pub title: String,
    /// The x axis's label.
    pub x_label: String,
    /// The y axis's label.
    pub y_label: String,
    /// Logarithmic x axis.
    pub log_x: bool,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// The series drawn.
    pub series: Vec<Series>,
    /// The markers drawn.
    pub markers: Vec<Marker>,
    /// Fixed y range, else from the data.
    pub y_range: Option<(f64, f64)>,
    /// Formats tick values.
    pub x_fmt: Option<fn(f64) -> String>,
    /// How y ticks are written (default: three significant digits).
    pub y_fmt: Option<fn(f64) -> String>,
}

fn ticks(lo: f64, hi: f64, log: bool) -> Vec<f64> {
    if log {
        let (a, b) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
        let mut t: Vec<f64> = (a..=b).map(|e| 10f64.powi(e)).collect();
        if b - a <= 2 {
            t = (a..=b)
                .flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e)))
                .collect();
        }
        t.into_iter()
            .filter(|v| *v >= lo * 0.999 && *v <= hi * 1.001)
            .collect()
    } else {
        let span = (hi - lo).max(1e-12);
        let raw = span / 5.0;
        let mag = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|m| m * mag)
            .find(|s| span / s <= 6.0)
            .unwrap_or(10.0 * mag);
        let start = (lo / step).ceil() * step;
        (0..20)
            .map(|i| start + i as f64 * step)
            .take_while(|v| *v <= hi + step * 1e-6)
            .collect()
    }
}

fn default_fmt(v: f64) -> String {
    crate::units::sig(v)
}

impl LineChart {
    /// Renders the chart, 720 × 420.
    pub fn render(&self) -> String {
        let (w, h) = (720.0, 420.0);
        let (l, r, t, b) = (72.0, 180.0, 40.0, 56.0);
        let mut svg = Svg::new(w, h);
        svg.text(w / 2.0, 22.0, &self.title, 15.0, "middle", "#111");
        let pts: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| {
                x.is_finite()
                    && y.is_finite()
                    && (!self.log_x || *x > 0.0)
                    && (!self.log_y || *y > 0.0)
            })
            .collect();
        if pts.is_empty() {
            svg.text(w / 2.0, h / 2.0, "no data", 13.0, "middle", "#666");
            return svg.finish();
        }
        let mut xs: Vec<f64> = pts.iter().map(|p| p.0).collect();
        xs.extend(
            self.markers
                .iter()
                .filter_map(|m| m.x)
                .filter(|x| x.is_finite() && (!self.log_x || *x > 0.0)),
        );
        let (mut x0, mut x1) = xs
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
        let (mut y0, mut y1) = self.y_range.unwrap_or_else(|| {
            let mut ys: Vec<f64> = pts.iter().map(|p| p.1).collect();
            ys.extend(self.markers.iter().filter_map(|m| m.y));
            let (a, b) = ys
                .iter()
                .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
            if self.log_y {
                (a, b)
            } else {
                (a.min(0.0), b * 1.05)
            }
        });
        if x1 <= x0 {
            x1 = x0 * 2.0 + 1.0;
            x0 *= 0.5;
        }
        if y1 <= y0 {
            y1 = y0 + 1.0;
            if self.log_y {
                y0 = (y0 * 0.5).max(1e-12);
            }
        }
        let fx = |x: f64| {
            let (a, b, v) = if self.log_x {
                (x0.ln(), x1.ln(), x.max(1e-300).ln())
            } else {
                (x0, x1, x)
            };
            l + (v - a) / (b - a) * (w - l - r)
        };
        let bm = b;
        let fy = |y: f64| {
            let (a, b, v) = if self.log_y {
                (y0.ln(), y1.ln(), y.max(1e-300).ln())
            } else {
                (y0, y1, y)
            };
            h - bm - (v - a) / (b - a) * (h - t - bm)
        };
        // Axes and grid.
        let xf = self.x_fmt.unwrap_or(default_fmt);
        let yf = self.y_fmt.unwrap_or(default_fmt);
        for v in ticks(x0, x1, self.log_x) {
            let x = fx(v);
            svg.line(x, t, x, h - b, "#e5e5e5", 1.0, false);
            svg.text(x, h - b + 16.0, &xf(v), 11.0, "middle", "#333");
        }
        for v in ticks(y0, y1, self.log_y) {
            let y = fy(v);
            svg.line(l, y, w - r, y, "#e5e5e5", 1.0, false);
            svg.text(l - 6.0, y + 4.0, &yf(v), 11.0, "end", "#333");
        }
        svg.line(l, h - b, w - r, h - b, "#333", 1.0, false);
        svg.line(l, t, l, h - b, "#333", 1.0, false);
        svg.text(
            (l + w - r) / 2.0,
            h - 14.0,
            &self.x_label,
            12.0,
            "middle",
            "#333",
        );
        svg.vtext(18.0, (t + h - b) / 2.0, &self.y_label, 12.0);
        for (i, m) in self.markers.iter().enumerate() {
            if let Some(x) = m.x.filter(|x| x.is_finite()) {
                let px = fx(x);
                svg.line(px, t, px, h - b, "#555", 1.2, true);
                // Labels of nearby markers go on rows of their own; near the right edge a
                // label ends at its line instead of running into the legend.
                let y = t + 12.0 + 13.0 * (i % 3) as f64;
                if px > w - r - 90.0 {
                    svg.text(px - 4.0, y, &m.label, 11.0, "end", "#333");
                } else {
                    svg.text(px + 4.0, y, &m.label, 11.0, "start", "#333");
                }
            }
            if let Some(y) = m.y.filter(|y| y.is_finite()) {
                let py = fy(y);
                svg.line(l, py, w - r, py, "#555", 1.2, true);
                svg.text(w - r - 4.0, py - 4.0, &m.label, 11.0, "end", "#333");
            }
        }
        for (i, s) in self.series.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            let p: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter(|(x, y)| {
                    x.is_finite()
                        && y.is_finite()
                        && (!self.log_x || *x > 0.0)
                        && (!self.log_y || *y > 0.0)
                })
                .map(|&(x, y)| (fx(x), fy(y.clamp(y0, y1))))
                .collect();
            svg.polyline(&p, c, 2.0, s.dashed);
            if s.dots {
                for (j, &(x, y)) in p.iter().enumerate() {
                    svg.circle(x, y, 3.0, c, s.labels.get(j).map(|s| s.as_str()));
                }
            }
            let ly = t + 14.0 + 18.0 * i as f64;
            svg.line(
                w - r + 12.0,
                ly - 4.0,
                w - r + 32.0,
                ly - 4.0,
                c,
                2.5,
                s.dashed,
            );
            svg.text(w - r + 36.0, ly, &s.name, 11.0, "start", "#222");
        }
        svg.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_ticks_are_sane() {
        let mut s = Svg::new(10.0, 10.0);
        s.text(0.0, 0.0, "<a & b>", 10.0, "start", "#000");
        let out = s.finish();
        assert!(out.contains("&lt;a &amp; b&gt;"));
        assert_eq!(ticks(1.0, 1000.0, true), vec![1.0, 10.0, 100.0, 1000.0]);
        let lin = ticks(0.0, 1.0, false);
        assert!(lin.len() >= 3 && lin[0] == 0.0, "{lin:?}");
    }
}
