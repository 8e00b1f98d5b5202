//! SVG charts drawn by hand: grouped bars and lines, with axes, ticks, a
//! legend and error bars (min–max), no font files needed.

use std::fmt::Write as _;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 400.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 70.0;
const COLOURS: [&str; 6] = [
    "#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#c53030", "#718096",
];

/// One series: a name and, per category, (median, min, max).
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) values: Vec<Option<(f64, f64, f64)>>,
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn header(title: &str) -> String {
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(
        svg,
        r##"<rect width="100%" height="100%" fill="#ffffff"/><text x="{}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"##,
        WIDTH / 2.0,
        escape(title)
    );
    svg
}

/// "Nice" tick values from 0 to at least `max`.
fn ticks(max: f64) -> Vec<f64> {
    if !(max.is_finite() && max > 0.0) {
        return vec![0.0, 1.0];
    }
    let raw = max / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(magnitude * 10.0);
    let mut out = vec![0.0];
    while *out.last().unwrap_or(&0.0) < max {
        out.push(out.last().unwrap_or(&0.0) + step);
    }
    out
}

fn label(value: f64) -> String {
    if value >= 1_000_000.0 {
        format!("{:.1}M", value / 1_000_000.0)
    } else if value >= 1_000.0 {
        format!("{:.0}k", value / 1_000.0)
    } else if value >= 10.0 || value == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

fn legend(svg: &mut String, series: &[Series]) {
    let mut x = LEFT;
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let _ = write!(
            svg,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{colour}"/><text x="{}" y="{}">{}</text>"#,
            HEIGHT - 22.0,
            x + 16.0,
            HEIGHT - 12.0,
            escape(&s.name)
        );
        x += 24.0 + 7.0 * s.name.len() as f64;
    }
}

/// Grouped bars: one group per category, one bar per series, with min–max
/// whiskers.
pub(crate) fn bars(title: &str, y_label: &str, categories: &[String], series: &[Series]) -> String {
    let max = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().map(|v| v.2))
        .fold(0.0, f64::max);
    let ticks = ticks(max);
    let top = *ticks.last().unwrap_or(&1.0);
    let plot_h = HEIGHT - TOP - BOTTOM;
    let plot_w = WIDTH - LEFT - RIGHT;
    let y = |v: f64| TOP + plot_h * (1.0 - v / top);
    let mut svg = header(title);
    axes(&mut svg, y_label, &ticks, &y);
    let group_w = plot_w / categories.len().max(1) as f64;
    let bar_w = (group_w * 0.8) / series.len().max(1) as f64;
    for (c, category) in categories.iter().enumerate() {
        let gx = LEFT + group_w * c as f64 + group_w * 0.1;
        for (i, s) in series.iter().enumerate() {
            let Some(Some((median, min, max))) = s.values.get(c) else {
                continue;
            };
            let colour = COLOURS[i % COLOURS.len()];
            let x = gx + bar_w * i as f64;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"><title>{}: {}</title></rect>"#,
                y(*median),
                bar_w * 0.9,
                (y(0.0) - y(*median)).max(0.0),
                escape(&s.name),
                label(*median)
            );
            let cx = x + bar_w * 0.45;
            let _ = write!(
                svg,
                r##"<line x1="{cx:.1}" x2="{cx:.1}" y1="{:.1}" y2="{:.1}" stroke="#1a202c"/>"##,
                y(*min),
                y(*max)
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            gx + group_w * 0.4,
            HEIGHT - BOTTOM + 18.0,
            escape(category)
        );
    }
    legend(&mut svg, series);
    svg.push_str("</svg>\n");
    svg
}

fn axes(svg: &mut String, y_label: &str, ticks: &[f64], y: &impl Fn(f64) -> f64) {
    for &t in ticks {
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" x2="{}" y1="{:.1}" y2="{:.1}" stroke="#e2e8f0"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            WIDTH - RIGHT,
            y(t),
            y(t),
            LEFT - 6.0,
            y(t) + 4.0,
            label(t)
        );
    }
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" x2="{LEFT}" y1="{TOP}" y2="{}" stroke="#1a202c"/><line x1="{LEFT}" x2="{}" y1="{}" y2="{}" stroke="#1a202c"/><text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">{}</text>"##,
        HEIGHT - BOTTOM,
        WIDTH - RIGHT,
        HEIGHT - BOTTOM,
        HEIGHT - BOTTOM,
        TOP + (HEIGHT - TOP - BOTTOM) / 2.0,
        TOP + (HEIGHT - TOP - BOTTOM) / 2.0,
        escape(y_label)
    );
}

/// Lines over categories on a log-10 y axis (latencies across orders of
/// magnitude), with min–max whiskers.
pub(crate) fn log_lines(
    title: &str,
    y_label: &str,
    categories: &[String],
    series: &[Series],
) -> String {
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().flat_map(|v| [v.1, v.2]))
        .filter(|v| *v > 0.0)
        .collect();
    let lo = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(1e-3);
    let hi = values.iter().copied().fold(0.0, f64::max).max(lo * 10.0);
    // Decades of a latency in ms: a handful, far inside i32.
    #[allow(clippy::cast_possible_truncation)]
    let (lo_exp, hi_exp) = (lo.log10().floor() as i32, hi.log10().ceil() as i32);
    let plot_h = HEIGHT - TOP - BOTTOM;
    let plot_w = WIDTH - LEFT - RIGHT;
    let span = f64::from((hi_exp - lo_exp).max(1));
    let y = |v: f64| TOP + plot_h * (1.0 - (v.max(1e-9).log10() - f64::from(lo_exp)) / span);
    let mut svg = header(title);
    let ticks: Vec<f64> = (lo_exp..=hi_exp).map(|e| 10f64.powi(e)).collect();
    axes(&mut svg, y_label, &ticks, &y);
    let x = |c: usize| LEFT + plot_w * (c as f64 + 0.5) / categories.len().max(1) as f64;
    for (c, category) in categories.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x(c),
            HEIGHT - BOTTOM + 18.0,
            escape(category)
        );
    }
    for (i, s) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .filter_map(|(c, v)| v.map(|(m, _, _)| format!("{:.1},{:.1}", x(c), y(m))))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            points.join(" ")
        );
        for (c, v) in s.values.iter().enumerate() {
            if let Some((m, min, max)) = v {
                let _ = write!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{colour}"><title>{}: {} ms</title></circle><line x1="{:.1}" x2="{:.1}" y1="{:.1}" y2="{:.1}" stroke="{colour}"/>"#,
                    x(c),
                    y(*m),
                    escape(&s.name),
                    label(*m),
                    x(c),
                    x(c),
                    y(*min),
                    y(*max)
                );
            }
        }
    }
    legend(&mut svg, series);
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_cover_the_maximum() {
        assert_eq!(ticks(95.0), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        assert!(*ticks(123_456.0).last().unwrap() >= 123_456.0);
        assert_eq!(ticks(0.0), vec![0.0, 1.0]);
    }

    #[test]
    fn charts_are_svg_with_every_series() {
        let series = vec![
            Series {
                name: "es".into(),
                values: vec![Some((10.0, 9.0, 11.0)), None],
            },
            Series {
                name: "raw <ref>".into(),
                values: vec![Some((20.0, 19.0, 21.0)), Some((5.0, 4.0, 6.0))],
            },
        ];
        let categories = vec!["a".to_owned(), "b".to_owned()];
        for svg in [
            bars("t", "events/s", &categories, &series),
            log_lines("t", "ms", &categories, &series),
        ] {
            assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
            assert!(svg.contains("raw &lt;ref&gt;"));
            assert!(svg.contains(">es<"));
        }
    }
}
