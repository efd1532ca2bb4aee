import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { chartSpecs } from './charts.js';
import type { ReportData } from './types.js';

/** One chart of a report as a standalone SVG document. */
export interface SvgFigure {
  id: string;
  title: string;
  svg: string;
}

/**
 * The report's charts rendered to SVG in Node (Vega's headless view: no browser, no canvas), for
 * pages that cannot run scripts, such as a repository's markdown. Same specs as the HTML report.
 */
export async function renderSvgFigures(data: ReportData): Promise<SvgFigure[]> {
  const out: SvgFigure[] = [];
  for (const chart of chartSpecs(data)) {
    const view = new vega.View(vega.parse(compile(chart.spec as unknown as TopLevelSpec).spec), {
      renderer: 'none',
    });
    view.background('white');
    try {
      out.push({ id: chart.id, title: chart.title, svg: await view.toSVG() });
    } finally {
      view.finalize();
    }
  }
  return out;
}
