/**
 * One answered question, flattened: a checkbox answer gives one item per
 * picked choice, a ranking one item per ranked choice with its rank, a matrix
 * one item per row. The validator flattens fresh answers this way and the
 * evidence flattens the packed answers of an analytic record the same way
 * (evidence/analytic-record.ts), so both always agree.
 */
export interface ResponseItem {
  strand: string;
  question: string;
  value: string | number | boolean;
  /** Matrix row code. */
  row?: string;
  /** Position in a ranking, from 1. */
  rank?: number;
}

/** What flattening needs to know of a question; undefined leaves its answer out. */
export interface QuestionShape {
  strand: string;
  /** A ranking's array is an order (one item per choice with its rank); any other array is a set of picks. */
  ranking: boolean;
}

type Scalar = string | number;

/** Flattens validated answers into items, in the answers' order. */
export function flattenAnswers(answers: Record<string, unknown>, shapeOf: (question: string) => QuestionShape | undefined): ResponseItem[] {
  const items: ResponseItem[] = [];
  for (const [question, value] of Object.entries(answers)) {
    const shape = shapeOf(question);
    if (!shape) continue;
    const { strand } = shape;
    if (shape.ranking) {
      (value as Scalar[]).forEach((choice, index) => items.push({ strand, question, value: choice, rank: index + 1 }));
    } else if (Array.isArray(value)) {
      for (const choice of value as Scalar[]) items.push({ strand, question, value: choice });
    } else if (typeof value === 'object' && value !== null) {
      for (const [row, column] of Object.entries(value)) items.push({ strand, question, row, value: column as Scalar });
    } else {
      items.push({ strand, question, value: value as Scalar | boolean });
    }
  }
  return items;
}
