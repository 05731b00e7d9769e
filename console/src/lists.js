// Reading a List RPC whole. No browser API here, so node's unit tests can import the pages that use it.

// Every item of a List RPC (`key` of each page), page after page, at most `pages` pages of 100.
export async function listAll(callRpc, service, method, key, request = {}, pages = 10) {
  const found = [];
  let pageToken = "";
  for (let page = 0; page < pages; page += 1) {
    const response = await callRpc(service, method, { ...request, pageSize: 100, pageToken });
    found.push(...(response[key] ?? []));
    pageToken = response.nextPageToken ?? "";
    if (!pageToken) break;
  }
  return found;
}
