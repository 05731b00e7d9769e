// Slow summaries (retention, lifecycle) drawn from the gateway's kept answer on a page's first view (ADR 58):
// at once when someone asked the same within a day, with the answer's age and a Refresh button that computes
// it again (and refreshes the kept answer for everyone).

import { FIRST_VIEW_MAX_STALE } from "../api.js";
import { disposeCharts } from "../charts.js";
import { clear, errorAlert, freshness } from "../dom.js";

// fetchAnswer(options) calls the RPC with `options` (ctx.call's); draw(results, response) draws it. A failed
// first call throws (the router shows it); a failed refresh is shown in place of the results.
export async function drawKeptAnswer(results, fetchAnswer, draw) {
  const show = async (options) => {
    const response = await fetchAnswer(options);
    disposeCharts(results);
    clear(results);
    const age = freshness(response, { onRefresh: refresh });
    if (age) results.append(age);
    draw(results, response);
  };
  const refresh = async () => {
    results.setAttribute("aria-busy", "true");
    try {
      await show({});
    } catch (error) {
      disposeCharts(results);
      results.replaceChildren(errorAlert(error));
    } finally {
      results.removeAttribute("aria-busy");
    }
  };
  await show({ maxStale: FIRST_VIEW_MAX_STALE });
}
