import { inflateSync } from 'node:zlib';

/**
 * A small reader of the PDFs Chromium (Skia) prints: the number of pages and
 * the text of each, enough for a test to check what a report says. It reads
 * uncompressed object tables, Flate streams, Type0 fonts with a ToUnicode map,
 * and the text operators Tf, Tj and TJ; nothing more.
 */
export function readPdf(pdf: Buffer): { pages: number; text: string } {
  const source = pdf.toString('latin1');
  const objects = new Map<number, { dict: string; stream?: Buffer }>();
  for (const match of source.matchAll(/(\d+) 0 obj\s*([\s\S]*?)endobj/g)) {
    const body = match[2]!;
    const streamAt = body.indexOf('stream');
    if (streamAt < 0) {
      objects.set(Number(match[1]), { dict: body });
      continue;
    }
    const dict = body.slice(0, streamAt);
    const start = match.index! + match[0].indexOf(body) + streamAt + 'stream'.length + (body[streamAt + 6] === '\r' ? 2 : 1);
    const length = Number(/\/Length (\d+)/.exec(dict)?.[1] ?? 0);
    const raw = pdf.subarray(start, start + length);
    objects.set(Number(match[1]), { dict, stream: /\/FlateDecode/.test(dict) ? inflateSync(raw) : raw });
  }
  const ref = (text: string, key: string) => Number(new RegExp(`/${key} (\\d+) 0 R`).exec(text)?.[1]);
  const cmaps = new Map<number, Map<string, string>>();
  const cmapOf = (fontId: number) => {
    if (cmaps.has(fontId)) return cmaps.get(fontId)!;
    const map = new Map<string, string>();
    const stream = objects.get(ref(objects.get(fontId)?.dict ?? '', 'ToUnicode'))?.stream?.toString('latin1') ?? '';
    const unicode = (hex: string) => String.fromCharCode(...(hex.match(/.{4}/g) ?? []).map((h) => parseInt(h, 16)));
    for (const block of stream.matchAll(/beginbfchar([\s\S]*?)endbfchar/g)) for (const m of block[1]!.matchAll(/<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>/g)) map.set(m[1]!.toUpperCase(), unicode(m[2]!));
    for (const block of stream.matchAll(/beginbfrange([\s\S]*?)endbfrange/g))
      for (const m of block[1]!.matchAll(/<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>/g)) {
        const [lo, hi, dst] = [parseInt(m[1]!, 16), parseInt(m[2]!, 16), parseInt(m[3]!, 16)];
        for (let c = lo; c <= hi; c++) map.set(c.toString(16).toUpperCase().padStart(m[1]!.length, '0'), String.fromCharCode(dst + c - lo));
      }
    cmaps.set(fontId, map);
    return map;
  };
  const pages = [...objects.values()].filter((o) => /\/Type \/Page\b/.test(o.dict));
  const texts = pages.map((page) => {
    const fonts = new Map([.../\/Font\s*<<([^>]*)>>/.exec(page.dict)?.[1]?.matchAll(/\/(\w+) (\d+) 0 R/g) ?? []].map((m) => [m[1]!, Number(m[2])]));
    const contents = /\/Contents\s*\[([^\]]*)\]/.exec(page.dict)?.[1]?.match(/\d+(?= 0 R)/g)?.map(Number) ?? [ref(page.dict, 'Contents')];
    let text = '';
    let font = new Map<string, string>();
    for (const id of contents) {
      const content = objects.get(id)?.stream?.toString('latin1') ?? '';
      for (const token of content.matchAll(/\/(\w+) [\d.]+ Tf|\[((?:[^\]])*)\]\s*TJ|<([0-9A-Fa-f]*)>\s*Tj|\bET\b/g)) {
        if (token[1]) font = cmapOf(fonts.get(token[1]) ?? -1);
        else if (token[0] === 'ET') text += ' ';
        else {
          const hexes = token[2] !== undefined ? [...token[2].matchAll(/<([0-9A-Fa-f]*)>/g)].map((m) => m[1]!) : [token[3]!];
          for (const hex of hexes) for (const code of hex.match(/.{4}/g) ?? []) text += font.get(code.toUpperCase()) ?? '';
        }
      }
    }
    return text;
  });
  // NFKC undoes the ligatures Chromium prints ("ﬀ" for "ff").
  return { pages: pages.length, text: texts.join('\n').normalize('NFKC') };
}
