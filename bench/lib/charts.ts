/**
 * SVG charts of the scaling results: vega-lite specs compiled by `vega-lite`, rendered to SVG text
 * by `vega` with the headless renderer (no canvas, no browser).
 */
import * as vega from "vega";
import * as vegaLite from "vega-lite";

export interface LinePoint {
  readonly x: number;
  readonly y: number;
  /** One line per distinct series. */
  readonly series: string;
}

export interface LineChart {
  readonly title: string;
  readonly subtitle?: string;
  readonly xTitle: string;
  readonly yTitle: string;
  readonly seriesTitle: string;
  readonly points: readonly LinePoint[];
  /** The x values to label (the grid's replica or connection counts). */
  readonly xValues: readonly number[];
  /** Log scale on x (connection counts 1…96 span two decades). */
  readonly xLog?: boolean;
}

export function lineChartSpec(chart: LineChart): vegaLite.TopLevelSpec {
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title:
      chart.subtitle === undefined ? chart.title : { text: chart.title, subtitle: chart.subtitle },
    width: 480,
    height: 300,
    background: "white",
    data: { values: chart.points.map((p) => ({ ...p })) },
    mark: { type: "line", point: true },
    encoding: {
      x: {
        field: "x",
        type: "quantitative",
        title: chart.xTitle,
        scale: chart.xLog === true ? { type: "log", nice: false } : { zero: false },
        axis: { values: [...chart.xValues], format: "d" },
      },
      y: { field: "y", type: "quantitative", title: chart.yTitle, scale: { zero: true } },
      color: { field: "series", type: "nominal", title: chart.seriesTitle, sort: null },
    },
  };
}

export async function renderSvg(spec: vegaLite.TopLevelSpec): Promise<string> {
  const compiled = vegaLite.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
