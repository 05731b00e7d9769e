// ECharts for the console: tree-shaken to the charts and components the pages draw, always with the SVG
// renderer (crisp, selectable by tests, and it needs no canvas or inline script under the console's CSP;
// it does set style attributes, which the CSP allows through style-src-attr).
//
// chart(container, option, {label}) gives the container role="img" and the label (the numbers themselves
// stand in a dataTable beside every chart), and keeps the chart sized to its container.

import * as echarts from "echarts/core";
import {
  BarChart,
  CustomChart,
  GraphChart,
  HeatmapChart,
  LineChart,
  PieChart,
  SankeyChart,
  ScatterChart,
} from "echarts/charts";
import {
  AriaComponent,
  DataZoomComponent,
  DatasetComponent,
  GridComponent,
  LegendComponent,
  MarkLineComponent,
  TitleComponent,
  TooltipComponent,
  VisualMapComponent,
} from "echarts/components";
import { SVGRenderer } from "echarts/renderers";

echarts.use([
  BarChart,
  CustomChart,
  GraphChart,
  HeatmapChart,
  LineChart,
  PieChart,
  SankeyChart,
  ScatterChart,
  AriaComponent,
  DataZoomComponent,
  DatasetComponent,
  GridComponent,
  LegendComponent,
  MarkLineComponent,
  TitleComponent,
  TooltipComponent,
  VisualMapComponent,
  SVGRenderer,
]);

// The ECharts namespace, for pages that need its helpers (echarts.graphic, echarts.format, ...).
export { echarts };

// A colour-blind-safe categorical palette: Okabe–Ito first, then Paul Tol's muted scheme.
export const PALETTE = Object.freeze([
  "#0072B2",
  "#E69F00",
  "#009E73",
  "#CC79A7",
  "#56B4E9",
  "#D55E00",
  "#332288",
  "#F0E442",
  "#882255",
  "#44AA99",
  "#999933",
  "#AA4499",
  "#117733",
  "#777777",
]);

// One colour per wayline.event.v1.Channel value, stable across pages and reports.
export const CHANNEL_COLOURS = Object.freeze({
  CHANNEL_UNSPECIFIED: "#BBBBBB",
  CHANNEL_WEB: "#0072B2",
  CHANNEL_MOBILE_APP: "#56B4E9",
  CHANNEL_EMAIL: "#E69F00",
  CHANNEL_SMS: "#009E73",
  CHANNEL_PUSH: "#CC79A7",
  CHANNEL_CALL_CENTER: "#D55E00",
  CHANNEL_CHATBOT: "#F0E442",
  CHANNEL_IN_STORE: "#332288",
  CHANNEL_DISPLAY_ADS: "#882255",
  CHANNEL_SOCIAL: "#44AA99",
  CHANNEL_VIDEO: "#999933",
  CHANNEL_KIOSK: "#AA4499",
  CHANNEL_OTHER: "#777777",
});

// The colour of a channel by its enum name; unknown names (a newer server) get the "other" grey.
export function channelColour(name) {
  return CHANNEL_COLOURS[name] ?? CHANNEL_COLOURS.CHANNEL_OTHER;
}

// Text placed in an ECharts HTML tooltip string is HTML: escape data before putting it in one (or return a
// DOM node from the formatter, built with h()).
export function escapeHtml(text) {
  return String(text)
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;")
    .replaceAll("'", "&#39;");
}

function prefersReducedMotion() {
  return typeof matchMedia === "function" && matchMedia("(prefers-reduced-motion: reduce)").matches;
}

const BASE_OPTION = {
  color: PALETTE,
  textStyle: { fontFamily: "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" },
  // Tooltips render as text (ECharts escapes series and item names in its default formatters).
  tooltip: { confine: true },
};

const resizeObservers = new WeakMap();

// Draw `option` into `container` with the SVG renderer. label: what the chart shows, for assistive
// technology (required). height: the container's height when its CSS gives none (default 400px).
export function chart(container, option, { label, height } = {}) {
  if (!label) throw new TypeError("chart(): a label is required");
  container.classList.add("chart");
  container.setAttribute("role", "img");
  container.setAttribute("aria-label", label);
  if (height !== undefined) container.style.height = typeof height === "number" ? `${height}px` : height;
  const existing = echarts.getInstanceByDom(container);
  if (existing) existing.dispose();
  const instance = echarts.init(container, null, { renderer: "svg" });
  const animation = option.animation ?? !prefersReducedMotion();
  instance.setOption({
    ...BASE_OPTION,
    animation,
    animationDuration: 300,
    ...option,
    tooltip: option.tooltip === undefined ? BASE_OPTION.tooltip : option.tooltip,
  });
  if (typeof ResizeObserver === "function") {
    const observer = new ResizeObserver(() => {
      // A container laid out with no width or height for a moment (seen while Chromium lays the page out
      // again for a full-page screenshot) has nothing to draw into, and ECharts' graph series throws on it
      // (its view cannot be inverted): resize only into a real area; the next observation brings it back.
      if (!instance.isDisposed() && container.clientWidth > 0 && container.clientHeight > 0) instance.resize();
    });
    observer.observe(container);
    resizeObservers.set(container, observer);
  }
  return instance;
}

// Dispose of every chart under `root` (the router calls it before it replaces a page).
export function disposeCharts(root) {
  for (const element of root.querySelectorAll(".chart")) {
    resizeObservers.get(element)?.disconnect();
    resizeObservers.delete(element);
    const instance = echarts.getInstanceByDom(element);
    if (instance) instance.dispose();
  }
}
