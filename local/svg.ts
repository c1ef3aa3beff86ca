/**
 * Hand-written SVG, no dependency: what the charts of the alarm drill (`--chart`) and of the bench
 * (bench/results-sweep.svg) are made of. Every attribute value and text is escaped.
 */

/** Attribute values of an element; `undefined` leaves the attribute out. */
export type SvgAttributes = Readonly<Record<string, string | number | undefined>>;

/** Escapes text and attribute values. */
export function escapeXml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

/** One element: with `text`, that text as its content; without, self-closed. */
export function svgElement(name: string, attributes: SvgAttributes, text?: string): string {
  const written = Object.entries(attributes)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => ` ${key}="${escapeXml(String(value))}"`)
    .join('');
  return text === undefined ? `<${name}${written}/>` : `<${name}${written}>${escapeXml(text)}</${name}>`;
}

/** A `<text>` element with its content. */
export function svgText(attributes: SvgAttributes, content: string): string {
  return svgElement('text', attributes, content);
}

/** A standalone SVG document on a white background, titled for screen readers. */
export function svgDocument(width: number, height: number, title: string, body: readonly string[]): string {
  const lines = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12" role="img">`,
    svgElement('title', {}, title),
    svgElement('rect', { x: 0, y: 0, width, height, fill: '#ffffff' }),
    ...body,
    '</svg>',
  ];
  return `${lines.join('\n')}\n`;
}

/** The `points` attribute of a polyline, to a tenth of a pixel. */
export function polylinePoints(points: readonly (readonly [number, number])[]): string {
  return points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' ');
}

/** A round number at or above `value`, for an axis maximum. */
export function niceCeiling(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  const nice = [1, 2, 2.5, 5, 10].find((m) => m * magnitude >= value) ?? 10;
  return nice * magnitude;
}
