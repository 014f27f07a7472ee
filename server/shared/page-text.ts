import { LANGUAGES, isLanguage, type Language } from './languages.ts';

/** Texts of the respondent's pages (the questionnaire's own texts live in surveys/). */
const text = {
  platformName: {
    en: 'VET staff mobility survey',
    fr: 'Enquête sur la mobilité du personnel de l’EFP',
    de: 'Umfrage zur Mobilität des Berufsbildungspersonals',
  },
  language: { en: 'Language', fr: 'Langue', de: 'Sprache' },
  saveLater: {
    en: 'Save and continue later',
    fr: 'Enregistrer et continuer plus tard',
    de: 'Speichern und später fortsetzen',
  },
  saved: {
    en: 'Your answers are saved. You can close this page and come back with the same link.',
    fr: 'Vos réponses sont enregistrées. Vous pouvez fermer cette page et revenir avec le même lien.',
    de: 'Ihre Antworten sind gespeichert. Sie können diese Seite schließen und mit demselben Link zurückkehren.',
  },
  offline: {
    en: 'The server cannot be reached. Your answers are kept in this browser and will be sent when the connection is back.',
    fr: 'Le serveur est injoignable. Vos réponses sont conservées dans ce navigateur et seront envoyées dès le retour de la connexion.',
    de: 'Der Server ist nicht erreichbar. Ihre Antworten bleiben in diesem Browser gespeichert und werden gesendet, sobald die Verbindung wieder besteht.',
  },
  submitting: { en: 'Sending your answers…', fr: 'Envoi de vos réponses…', de: 'Ihre Antworten werden gesendet…' },
  fixErrors: {
    en: 'Some answers need your attention; they are marked in the questionnaire.',
    fr: 'Certaines réponses doivent être corrigées ; elles sont signalées dans le questionnaire.',
    de: 'Einige Antworten müssen korrigiert werden; sie sind im Fragebogen markiert.',
  },
  showSubmitted: {
    en: 'Show the submitted answers',
    fr: 'Afficher les réponses envoyées',
    de: 'Übermittelte Antworten anzeigen',
  },
  useMine: {
    en: 'Use the answers on this page',
    fr: 'Utiliser les réponses de cette page',
    de: 'Antworten dieser Seite verwenden',
  },
  thanksTitle: { en: 'Thank you', fr: 'Merci', de: 'Vielen Dank' },
  thanks: {
    en: 'Your answers were received on {date}. They will feed the working group’s evidence on staff mobility.',
    fr: 'Vos réponses ont été reçues le {date}. Elles alimenteront les travaux du groupe de travail sur la mobilité du personnel.',
    de: 'Ihre Antworten sind am {date} eingegangen. Sie fließen in die Auswertung der Arbeitsgruppe zur Personalmobilität ein.',
  },
  correct: {
    en: 'Correct my answers',
    fr: 'Corriger mes réponses',
    de: 'Meine Antworten korrigieren',
  },
  correctHint: {
    en: 'You can correct your answers until {date}; your latest submission counts.',
    fr: 'Vous pouvez corriger vos réponses jusqu’au {date} ; votre dernier envoi est pris en compte.',
    de: 'Sie können Ihre Antworten bis zum {date} korrigieren; Ihre letzte Übermittlung zählt.',
  },
  unknownTitle: { en: 'This link does not work', fr: 'Ce lien ne fonctionne pas', de: 'Dieser Link funktioniert nicht' },
  unknown: {
    en: 'We could not find a questionnaire for this link. Please check that you copied the whole link from your invitation email, or ask the survey coordinator for a new one.',
    fr: 'Aucun questionnaire ne correspond à ce lien. Vérifiez que vous avez copié le lien complet de votre invitation, ou demandez-en un nouveau au coordinateur de l’enquête.',
    de: 'Zu diesem Link gibt es keinen Fragebogen. Bitte prüfen Sie, ob Sie den vollständigen Link aus Ihrer Einladung kopiert haben, oder bitten Sie die Koordination um einen neuen.',
  },
  revokedTitle: { en: 'This link is no longer valid', fr: 'Ce lien n’est plus valable', de: 'Dieser Link ist nicht mehr gültig' },
  revoked: {
    en: 'This personal link has been withdrawn. If you still want to take part, please ask the survey coordinator for a new link.',
    fr: 'Ce lien personnel a été retiré. Si vous souhaitez encore participer, demandez un nouveau lien au coordinateur de l’enquête.',
    de: 'Dieser persönliche Link wurde zurückgezogen. Wenn Sie noch teilnehmen möchten, bitten Sie die Koordination um einen neuen Link.',
  },
  replacedTitle: { en: 'This link has been replaced', fr: 'Ce lien a été remplacé', de: 'Dieser Link wurde ersetzt' },
  replaced: {
    en: 'This personal link has been replaced by a new one. Please use the link from your most recent email; your answers so far are kept. If you have not received it, ask the survey coordinator.',
    fr: 'Ce lien personnel a été remplacé par un nouveau. Utilisez le lien de votre message le plus récent ; vos réponses déjà données sont conservées. Si vous ne l’avez pas reçu, demandez-le au coordinateur de l’enquête.',
    de: 'Dieser persönliche Link wurde durch einen neuen ersetzt. Bitte verwenden Sie den Link aus Ihrer neuesten E-Mail; Ihre bisherigen Antworten bleiben erhalten. Falls Sie ihn nicht erhalten haben, wenden Sie sich an die Koordination.',
  },
  closedTitle: { en: 'This survey is closed', fr: 'Cette enquête est close', de: 'Diese Umfrage ist beendet' },
  closed: {
    en: 'The survey “{campaign}” closed on {date}. Thank you for your interest.',
    fr: 'L’enquête « {campaign} » a pris fin le {date}. Merci de votre intérêt.',
    de: 'Die Umfrage „{campaign}“ wurde am {date} beendet. Vielen Dank für Ihr Interesse.',
  },
  notYetTitle: { en: 'This survey has not opened yet', fr: 'Cette enquête n’est pas encore ouverte', de: 'Diese Umfrage ist noch nicht geöffnet' },
  notYet: {
    en: 'The survey “{campaign}” opens on {date}. Please come back then with the same link.',
    fr: 'L’enquête « {campaign} » ouvre le {date}. Revenez à cette date avec le même lien.',
    de: 'Die Umfrage „{campaign}“ beginnt am {date}. Bitte kommen Sie dann mit demselben Link zurück.',
  },
  tooManyTitle: { en: 'Too many attempts', fr: 'Trop de tentatives', de: 'Zu viele Versuche' },
  tooMany: {
    en: 'Too many links were tried from your connection. Please wait {seconds} seconds and try again.',
    fr: 'Trop de liens ont été essayés depuis votre connexion. Veuillez patienter {seconds} secondes puis réessayer.',
    de: 'Von Ihrer Verbindung wurden zu viele Links versucht. Bitte warten Sie {seconds} Sekunden und versuchen Sie es erneut.',
  },
  tooManyRequests: {
    en: 'Too many requests through this link in a short time. Please wait {seconds} seconds and try again.',
    fr: 'Trop de requêtes par ce lien en peu de temps. Veuillez patienter {seconds} secondes puis réessayer.',
    de: 'Zu viele Anfragen über diesen Link in kurzer Zeit. Bitte warten Sie {seconds} Sekunden und versuchen Sie es erneut.',
  },
  privacyTitle: { en: 'Privacy notice', fr: 'Avis de confidentialité', de: 'Datenschutzhinweis' },
  privacyLink: { en: 'Privacy notice', fr: 'Confidentialité', de: 'Datenschutz' },
  consentLabel: {
    en: 'I have read the privacy notice and agree that my answers are processed as it describes.',
    fr: 'J’ai lu l’avis de confidentialité et j’accepte que mes réponses soient traitées comme il le décrit.',
    de: 'Ich habe den Datenschutzhinweis gelesen und bin einverstanden, dass meine Antworten wie beschrieben verarbeitet werden.',
  },
  consentStart: { en: 'Start the questionnaire', fr: 'Commencer le questionnaire', de: 'Fragebogen beginnen' },
  consentRequired: {
    en: 'Please tick the box to agree before answering.',
    fr: 'Veuillez cocher la case pour donner votre accord avant de répondre.',
    de: 'Bitte setzen Sie das Häkchen, um vor dem Antworten zuzustimmen.',
  },
  consentGiven: {
    en: 'You agreed to the privacy notice on {date}.',
    fr: 'Vous avez accepté l’avis de confidentialité le {date}.',
    de: 'Sie haben dem Datenschutzhinweis am {date} zugestimmt.',
  },
  noScript: {
    en: 'This questionnaire needs JavaScript. Please enable it in your browser.',
    fr: 'Ce questionnaire nécessite JavaScript. Veuillez l’activer dans votre navigateur.',
    de: 'Dieser Fragebogen benötigt JavaScript. Bitte aktivieren Sie es in Ihrem Browser.',
  },
  skipToContent: { en: 'Skip to content', fr: 'Aller au contenu', de: 'Zum Inhalt springen' },
  pageCounter: {
    en: 'Page {page} of {pages}',
    fr: 'Page {page} sur {pages}',
    de: 'Seite {page} von {pages}',
  },
  pagesSkipped: {
    en: 'Pages that do not apply to you are skipped.',
    fr: 'Les pages qui ne vous concernent pas sont sautées.',
    de: 'Seiten, die Sie nicht betreffen, werden übersprungen.',
  },
  errorListTitle: {
    en: 'Please check these answers:',
    fr: 'Veuillez vérifier ces réponses :',
    de: 'Bitte prüfen Sie diese Antworten:',
  },
  answersInvalid: {
    en: 'Some answers are not valid.',
    fr: 'Certaines réponses ne sont pas valides.',
    de: 'Einige Antworten sind ungültig.',
  },
  pageExpired: {
    en: 'This page has expired. Please reload it.',
    fr: 'Cette page a expiré. Veuillez la recharger.',
    de: 'Diese Seite ist abgelaufen. Bitte laden Sie sie neu.',
  },
  outOfDate: {
    en: 'This page is out of date. Please reload it.',
    fr: 'Cette page n’est plus à jour. Veuillez la recharger.',
    de: 'Diese Seite ist nicht mehr aktuell. Bitte laden Sie sie neu.',
  },
  tooLarge: {
    en: 'The answers are too large to save.',
    fr: 'Les réponses sont trop volumineuses pour être enregistrées.',
    de: 'Die Antworten sind zu umfangreich, um gespeichert zu werden.',
  },
  badRequest: {
    en: 'The request could not be read. Please reload the page and try again.',
    fr: 'La requête n’a pas pu être lue. Veuillez recharger la page et réessayer.',
    de: 'Die Anfrage konnte nicht gelesen werden. Bitte laden Sie die Seite neu und versuchen Sie es erneut.',
  },
  notJson: {
    en: 'The request body is not valid JSON.',
    fr: 'Le corps de la requête n’est pas du JSON valide.',
    de: 'Der Inhalt der Anfrage ist kein gültiges JSON.',
  },
  requestTooLarge: {
    en: 'The request is too large.',
    fr: 'La requête est trop volumineuse.',
    de: 'Die Anfrage ist zu groß.',
  },
  malformedAddress: {
    en: 'This address is not valid: it contains a malformed percent-encoding (%).',
    fr: 'Cette adresse n’est pas valable : elle contient un encodage en pourcentage (%) mal formé.',
    de: 'Diese Adresse ist ungültig: Sie enthält eine fehlerhafte Prozentkodierung (%).',
  },
  tooDeep: {
    en: 'The request is nested more than {depth} levels deep.',
    fr: 'La requête est imbriquée sur plus de {depth} niveaux.',
    de: 'Die Anfrage ist tiefer als {depth} Ebenen verschachtelt.',
  },
  unsupportedCharset: {
    en: 'The request body uses a character set that is not supported. Please send it as UTF-8.',
    fr: 'Le corps de la requête utilise un jeu de caractères non pris en charge. Veuillez l’envoyer en UTF-8.',
    de: 'Der Inhalt der Anfrage verwendet einen nicht unterstützten Zeichensatz. Bitte senden Sie ihn als UTF-8.',
  },
  unsupportedEncoding: {
    en: 'The request body uses a content encoding that is not supported. Please send it uncompressed, or with gzip, deflate or br.',
    fr: 'Le corps de la requête utilise un encodage de contenu non pris en charge. Veuillez l’envoyer non compressé, ou en gzip, deflate ou br.',
    de: 'Der Inhalt der Anfrage verwendet eine nicht unterstützte Inhaltskodierung. Bitte senden Sie ihn unkomprimiert oder mit gzip, deflate oder br.',
  },
  notFound: {
    en: 'This page does not exist.',
    fr: 'Cette page n’existe pas.',
    de: 'Diese Seite existiert nicht.',
  },
  serverError: {
    en: 'Something went wrong on our side. Please try again in a moment.',
    fr: 'Un problème est survenu de notre côté. Veuillez réessayer dans un instant.',
    de: 'Bei uns ist ein Fehler aufgetreten. Bitte versuchen Sie es gleich noch einmal.',
  },
  errorCode: { en: 'Error {status}.', fr: 'Erreur {status}.', de: 'Fehler {status}.' },
  downloadAnswers: {
    en: 'Download a copy of your answers',
    fr: 'Télécharger une copie de vos réponses',
    de: 'Eine Kopie Ihrer Antworten herunterladen',
  },
  answersCopyTitle: { en: 'Your answers', fr: 'Vos réponses', de: 'Ihre Antworten' },
  answersCopyIntro: {
    en: 'A copy of the answers you submitted to “{campaign}” on {date}. Keep it for your records or print it.',
    fr: 'Copie des réponses que vous avez envoyées pour « {campaign} » le {date}. Conservez-la ou imprimez-la.',
    de: 'Eine Kopie der Antworten, die Sie am {date} für „{campaign}“ übermittelt haben. Bewahren Sie sie auf oder drucken Sie sie aus.',
  },
  noAnswersYet: {
    en: 'No answers have been submitted through this link yet.',
    fr: 'Aucune réponse n’a encore été envoyée par ce lien.',
    de: 'Über diesen Link wurden noch keine Antworten übermittelt.',
  },
  unsubscribeTitle: { en: 'Unsubscribe', fr: 'Désinscription', de: 'Abmelden' },
  unsubscribeAsk: {
    en: 'Stop all emails about the VET staff mobility survey to {email}?',
    fr: 'Ne plus envoyer d’e-mails sur l’enquête sur la mobilité du personnel de l’EFP à {email} ?',
    de: 'Keine E-Mails zur Umfrage zur Mobilität des Berufsbildungspersonals mehr an {email} senden?',
  },
  unsubscribeButton: { en: 'Unsubscribe', fr: 'Me désinscrire', de: 'Abmelden' },
  unsubscribedTitle: { en: 'You are unsubscribed', fr: 'Vous êtes désinscrit(e)', de: 'Sie sind abgemeldet' },
  unsubscribed: {
    en: 'You will not receive further emails about the VET staff mobility survey.',
    fr: 'Vous ne recevrez plus d’e-mails sur l’enquête sur la mobilité du personnel de l’EFP.',
    de: 'Sie erhalten keine weiteren E-Mails zur Umfrage zur Mobilität des Berufsbildungspersonals.',
  },
  unsubscribeInvalidTitle: {
    en: 'This unsubscribe link does not work',
    fr: 'Ce lien de désinscription ne fonctionne pas',
    de: 'Dieser Abmeldelink funktioniert nicht',
  },
  unsubscribeInvalid: {
    en: 'This unsubscribe link is not valid. Please use the link from the email exactly as it was sent.',
    fr: 'Ce lien de désinscription n’est pas valable. Utilisez le lien de l’e-mail tel qu’il a été envoyé.',
    de: 'Dieser Abmeldelink ist ungültig. Bitte verwenden Sie den Link aus der E-Mail genau so, wie er gesendet wurde.',
  },
} satisfies Record<string, Record<Language, string>>;

export type PageTextKey = keyof typeof text;

export function pageText(language: Language, values: Record<string, string> = {}): Record<PageTextKey, string> {
  const out = {} as Record<PageTextKey, string>;
  for (const key of Object.keys(text) as PageTextKey[]) {
    out[key] = text[key][language].replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? `{${name}}`);
  }
  return out;
}

/** The language of a page for someone whose own is unknown (an unknown link): the browser's choice among the platform's. */
export function browserLanguage(req: { acceptsLanguages(...languages: string[]): string | false }): Language {
  const accepted = req.acceptsLanguages(...LANGUAGES);
  return isLanguage(accepted) ? accepted : 'en';
}
