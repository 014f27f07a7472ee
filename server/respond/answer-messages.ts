import type { Language } from '../shared/languages.ts';

/** Messages for the checks survey-core does not make itself, in every survey language. */
const messages = {
  notAnObject: {
    en: 'The answers must be sent as an object of question names and values.',
    fr: 'Les réponses doivent être envoyées sous forme d’objet (nom de question et valeur).',
    de: 'Die Antworten müssen als Objekt aus Fragenamen und Werten gesendet werden.',
  },
  invalid: {
    en: 'Some answers are not valid. Please go through the questionnaire again.',
    fr: 'Certaines réponses ne sont pas valides. Veuillez parcourir à nouveau le questionnaire.',
    de: 'Einige Antworten sind ungültig. Bitte gehen Sie den Fragebogen noch einmal durch.',
  },
  draftInvalid: {
    en: 'Your answers could not be saved: some of them are not in the expected form. Please check the questions marked.',
    fr: 'Vos réponses n’ont pas pu être enregistrées : certaines n’ont pas la forme attendue. Veuillez vérifier les questions signalées.',
    de: 'Ihre Antworten konnten nicht gespeichert werden: Einige haben nicht die erwartete Form. Bitte prüfen Sie die markierten Fragen.',
  },
  newerSubmission: {
    en: 'Answers were already submitted from another window or device, and they differ from the answers on this page. Nothing on this page has been sent or lost: show the submitted answers, or submit the answers on this page to replace them.',
    fr: 'Des réponses ont déjà été envoyées depuis une autre fenêtre ou un autre appareil, et elles diffèrent de celles de cette page. Rien de cette page n’a été envoyé ni perdu : affichez les réponses envoyées, ou envoyez celles de cette page pour les remplacer.',
    de: 'Aus einem anderen Fenster oder von einem anderen Gerät wurden bereits Antworten übermittelt, und sie unterscheiden sich von den Antworten auf dieser Seite. Von dieser Seite wurde nichts gesendet und nichts geht verloren: Zeigen Sie die übermittelten Antworten an, oder übermitteln Sie die Antworten dieser Seite, um sie zu ersetzen.',
  },
  consentRequired: {
    en: 'Please agree to the privacy notice before answering: nothing was saved.',
    fr: 'Veuillez accepter l’avis de confidentialité avant de répondre : rien n’a été enregistré.',
    de: 'Bitte stimmen Sie dem Datenschutzhinweis zu, bevor Sie antworten: Es wurde nichts gespeichert.',
  },
  staleDraft: {
    en: 'Answers were submitted from another window or device after this page was opened, so this page was not saved. Show the submitted answers, or keep working with the answers on this page.',
    fr: 'Des réponses ont été envoyées depuis une autre fenêtre ou un autre appareil après l’ouverture de cette page ; cette page n’a donc pas été enregistrée. Affichez les réponses envoyées, ou continuez avec les réponses de cette page.',
    de: 'Nach dem Öffnen dieser Seite wurden aus einem anderen Fenster oder von einem anderen Gerät Antworten übermittelt; diese Seite wurde daher nicht gespeichert. Zeigen Sie die übermittelten Antworten an, oder arbeiten Sie mit den Antworten dieser Seite weiter.',
  },
  number: {
    en: 'Please enter a number.',
    fr: 'Veuillez saisir un nombre.',
    de: 'Bitte geben Sie eine Zahl ein.',
  },
  wholeNumber: {
    en: 'Please enter a whole number.',
    fr: 'Veuillez saisir un nombre entier.',
    de: 'Bitte geben Sie eine ganze Zahl ein.',
  },
  range: {
    en: 'Please enter a value from {min} to {max}.',
    fr: 'Veuillez saisir une valeur comprise entre {min} et {max}.',
    de: 'Bitte geben Sie einen Wert von {min} bis {max} ein.',
  },
  text: {
    en: 'Please enter text.',
    fr: 'Veuillez saisir du texte.',
    de: 'Bitte geben Sie einen Text ein.',
  },
  tooLong: {
    en: 'Please enter at most {max} characters.',
    fr: 'Veuillez saisir au maximum {max} caractères.',
    de: 'Bitte geben Sie höchstens {max} Zeichen ein.',
  },
  choice: {
    en: 'Please choose one of the options offered.',
    fr: 'Veuillez choisir l’une des options proposées.',
    de: 'Bitte wählen Sie eine der angebotenen Optionen.',
  },
  choices: {
    en: 'Please choose only among the options offered, each at most once.',
    fr: 'Veuillez choisir uniquement parmi les options proposées, chacune une seule fois.',
    de: 'Bitte wählen Sie nur unter den angebotenen Optionen, jede höchstens einmal.',
  },
  tooManyChoices: {
    en: 'Please choose at most {max}.',
    fr: 'Veuillez choisir au maximum {max} options.',
    de: 'Bitte wählen Sie höchstens {max} aus.',
  },
  tooFewChoices: {
    en: 'Please choose at least {min}.',
    fr: 'Veuillez choisir au moins {min} options.',
    de: 'Bitte wählen Sie mindestens {min} aus.',
  },
  yesNo: {
    en: 'Please answer yes or no.',
    fr: 'Veuillez répondre par oui ou par non.',
    de: 'Bitte antworten Sie mit Ja oder Nein.',
  },
  matrix: {
    en: 'Please choose one of the offered columns for each row.',
    fr: 'Veuillez choisir l’une des colonnes proposées pour chaque ligne.',
    de: 'Bitte wählen Sie für jede Zeile eine der angebotenen Spalten.',
  },
} satisfies Record<string, Record<Language, string>>;

export type MessageKey = keyof typeof messages;

export function answerMessage(key: MessageKey, language: Language, values: Record<string, string | number> = {}): string {
  return messages[key][language].replace(/\{(\w+)\}/g, (_, name: string) => String(values[name] ?? ''));
}
