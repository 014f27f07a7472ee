import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as common from '@zxcvbn-ts/language-common';
import * as en from '@zxcvbn-ts/language-en';

/**
 * zxcvbn's score (0–4) a chosen password must reach. 3 is "safely
 * unguessable: moderate protection from an offline attack"; every password
 * of the common-password and breached-password lists that zxcvbn-ts ships
 * (@zxcvbn-ts/language-common) scores below it, whatever its length.
 */
export const MIN_PASSWORD_SCORE = 3;

let factory: ZxcvbnFactory | undefined;

/** Built on first use: loading the dictionaries takes a moment that sign-in alone never needs. */
function checker(): ZxcvbnFactory {
  factory ??= new ZxcvbnFactory({
    dictionary: { ...common.dictionary, ...en.dictionary },
    graphs: common.adjacencyGraphs,
    translations: en.translations,
  });
  return factory;
}

/**
 * Why a password someone chose is too easy to guess, as a sentence that says
 * what to do instead; undefined when it is strong enough. Words of the
 * person's own name and address count as easy to guess too.
 */
export function passwordWeakness(password: string, personal: string[] = []): string | undefined {
  const result = checker().check(password, personal.flatMap((value) => value.toLowerCase().split(/[^\p{L}\p{N}]+/u)).filter((word) => word.length >= 3));
  if (result.score >= MIN_PASSWORD_SCORE) return undefined;
  const warning = result.feedback.warning ? `${result.feedback.warning.replace(/\.$/, '')}. ` : '';
  return `is too easy to guess. ${warning}Choose a passphrase of four or more unrelated words, or a password manager's random password.`;
}
