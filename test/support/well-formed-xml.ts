/**
 * A strict check that a document is well-formed XML of the plain kind the charts write (elements,
 * attributes, text, the five predefined entities and numeric references; no DOCTYPE, CDATA,
 * comments or processing instructions). Returns the problems found; none means well-formed.
 */
export function xmlProblems(document: string): string[] {
  const problems: string[] = [];
  const open: string[] = [];
  let roots = 0;
  const name = '[A-Za-z_][A-Za-z0-9_.:-]*';
  const attribute = new RegExp(`^\\s+(${name})\\s*=\\s*("[^"<]*"|'[^'<]*')`);
  const checkText = (text: string, where: string) => {
    for (const match of text.matchAll(/&([^;\s]*);?/g)) {
      if (!/^&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);$/.test(match[0])) {
        problems.push(`bad entity ${JSON.stringify(match[0])} in ${where}`);
      }
    }
  };
  let at = 0;
  while (at < document.length) {
    const lt = document.indexOf('<', at);
    const text = document.slice(at, lt === -1 ? document.length : lt);
    if (open.length === 0 && text.trim() !== '')
      problems.push(`text outside the root: ${text.trim().slice(0, 40)}`);
    checkText(text, 'text');
    if (lt === -1) break;
    const gt = document.indexOf('>', lt);
    if (gt === -1) {
      problems.push('a tag is not closed');
      break;
    }
    const tag = document.slice(lt + 1, gt);
    at = gt + 1;
    if (tag.startsWith('/')) {
      const closing = tag.slice(1).trim();
      const expected = open.pop();
      if (closing !== expected) problems.push(`</${closing}> closes <${expected ?? 'nothing'}>`);
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const head = new RegExp(`^(${name})`).exec(body);
    if (!head) {
      problems.push(`bad tag <${tag.slice(0, 40)}>`);
      continue;
    }
    let rest = body.slice(head[1]!.length);
    const seen = new Set<string>();
    for (let match = attribute.exec(rest); match; match = attribute.exec(rest)) {
      if (seen.has(match[1]!)) problems.push(`attribute ${match[1]} twice in <${head[1]}>`);
      seen.add(match[1]!);
      checkText(match[2]!.slice(1, -1), 'an attribute');
      rest = rest.slice(match[0].length);
    }
    if (rest.trim() !== '') problems.push(`bad attributes in <${head[1]}>: ${rest.trim().slice(0, 40)}`);
    if (open.length === 0) roots++;
    if (!selfClosing) open.push(head[1]!);
  }
  if (open.length > 0) problems.push(`not closed: ${open.join(' > ')}`);
  if (roots !== 1) problems.push(`${roots} root elements`);
  return problems;
}
