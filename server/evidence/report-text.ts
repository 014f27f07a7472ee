import type { LocalizedText } from '../surveys/definitions.ts';
import type { Language } from '../shared/languages.ts';
import { UNLISTED_GROUPS_NOTE, type Thresholds } from './disclosure.ts';
import type { Band, Unit } from './indicators.ts';
import type { QuestionCatalogue } from './question-catalogue.ts';

/**
 * The evidence report in each language of the platform (en, fr, de): its
 * headings, labels, notes and method note, and how it writes numbers and
 * dates. Indicator, question and answer labels come from the survey's own
 * translations (surveys/); only what the report adds is written here.
 */
const TEXT = {
  en: {
    title: 'Staff mobility in VET: evidence report',
    pdfTitle: 'Evidence report',
    page: 'page',
    of: 'of',
    download: 'Download the report as PDF',
    languageChoice: 'Report language',
    covers: 'What this report covers',
    campaign: 'Campaign',
    fieldwork: 'Fieldwork',
    filter: 'Filter',
    breakdown: 'Breakdown',
    thresholds: 'Disclosure thresholds',
    institutionsInvited: 'Institutions invited',
    invitations: 'Invitations',
    responses: 'Responses',
    responseRate: 'Response rate',
    rateBasis: 'Response rate based on',
    basedOn: (n: string, campaign: string, filter: string, day: string) =>
      `Based on <strong>${n}</strong> ${n === '1' ? 'response' : 'responses'} to the campaign ${campaign} (filter: ${filter}), generated on ${day}. This is <strong>not a probability sample</strong>: the figures describe the institutions and staff who answered, not all VET providers.`,
    whoAnswered: 'Who answered',
    responsesBy: 'Responses by',
    groupsNotShown: (n: number) => `${n} ${n === 1 ? 'group' : 'groups'} not shown`,
    indicatorsNotShown: (n: number) => `${n} ${n === 1 ? 'indicator' : 'indicators'} not shown`,
    headline: 'Headline indicators',
    headlineChart: 'Headline indicators in per cent',
    headlineAria: 'Headline indicators in per cent; the same figures are in the table below',
    headlineCaption: 'Headline indicators in per cent (suppressed figures are left out).',
    indicator: 'Indicator',
    overall: 'Overall',
    by: 'by',
    barriers: 'Barriers, ranked',
    barrierChart: 'Barrier index: % moderate or major',
    barrierAria: 'Barrier index, ranked; the same figures are in the table below',
    barrierCaption: 'Barrier index: share answering "moderate" or "major" ("don\'t know" left out), ranked.',
    barrier: 'Barrier',
    barrierColumn: 'Barrier index (% moderate or major)',
    heatmap: 'Heat map: headline indicators by country',
    heatmapCaption: 'Headline indicators by country',
    heatmapNote: "Each column is shaded from its lowest published value (lightest) to its highest (darkest); QCI and IMI means in the Mobility Scoreboard's bands.",
    quotes: 'In their own words',
    quotesSuppressed: 'Quotes',
    countryNotShown: 'country not shown',
    noQuote: 'No quote approved for publication yet.',
    method: 'Methodological note',
    methodNote: (t: Thresholds) => [
      `Cells with answers from fewer than ${t.minInstitutions} institutions or ${t.minRespondents} respondents are suppressed, as is a further cell wherever a suppressed one could be recomputed from a total and the published cells (a group that routing leaves empty never counts as protecting one); one decision per cell holds for every table, chart and export. Inside a published cell, where one answer count of a question would give away a small group's answers, all of that question's counts there are suppressed (n stays), with its top-two share, its mean and the indicator values computed from them.`,
      `<strong>Partial answers</strong> are used pairwise: each figure counts everyone who answered the questions it needs, so its n differs from figure to figure; a response is never dropped because other questions are blank. "Don't know" is counted apart and never averaged. Shares agreeing (top two points) come first, means second.`,
      `<strong>Means pooled over items</strong>: the QCI (S2.1–S2.7), the IMI (S4.1, S4.2, S4.8–S4.10 and S4.7) and the "% agree" lines of the QCI, Europeanisation, learning-support and impact indices pool every valid item answer (one respondent counts once per item answered), not a mean of respondents' means. QCI and IMI are shown in the Mobility Scoreboard's colour bands; for the IMI, substitute arrangements (S4.7) count as maturity 1 (none) to 4 (shared regional pool) and the mean is rescaled from 1–4 to 1–5.`,
      `<strong>Rates are pooled totals</strong>: the sum of the numerators over the sum of the denominators, over the responses that gave the denominator and at least one numerator part (a missing part counts 0). The S2 learner figures (outgoing learners, cohort, long stays, recognition, Europass, inclusion, incoming) are institution figures reported by each respondent: every respondent's figures count, so an institution with two respondents in S2 counts twice. The management questionnaire (S4) counts once per institution (its latest response).`,
      `<strong>Accredited</strong> means Erasmus+ status (P8) "accredited" or "consortium coordinator"; every other status, and no answer, counts as not accredited. The accreditation gap is the staff mobility rate of the first group minus that of the second: counting consortium members as accredited instead would change its size and can flip its sign.`,
      'Invitations are counted by the institution record\'s country and type; responses by the respondent\'s own answers, so a response rate under a filter is approximate, and is not known for filters on role, size, Erasmus+ status or location.',
    ],
    suppressed: (t: Thresholds) => `suppressed (fewer than ${t.minInstitutions} institutions or ${t.minRespondents} respondents)`,
    noData: 'no data',
    points: 'points',
    againstTarget: 'against the target',
    notStated: 'not stated',
    bands: { excellent: 'excellent', 'very good': 'very good', good: 'good', 'some progress': 'some progress', 'little progress': 'little progress' } as Record<Band, string>,
    suffix: { yes: ' (% yes)', agree: ': % agree (4–5)', mean: ': mean (1–5)', imi: ': mean rescaled to 1–5', cohort: ' (% of the cohort; EU target 12%)', staff: ' (outgoing staff per 100 staff)', gap: ' (staff mobility rate, accredited minus not accredited, points)' },
    scope: {
      all: 'all responses',
      everyone: 'none (everyone)',
      overallOnly: 'none (overall only)',
      thresholds: (t: Thresholds) => `${t.minInstitutions} institutions, ${t.minRespondents} respondents; ${UNLISTED_GROUPS_NOTE}`,
      suppressedNumber: 'a suppressed number of',
      unknown: 'not known for this filter',
      notKnown: 'not known',
      to: 'to',
      basisAll: 'Response rate: responses ÷ invitations (links not revoked).',
      basisFilter: (where: string, dims: string) => `Response rate: responses in this filter ÷ invitations to institutions whose record says ${where}. A response counts by the ${dims} its respondent answered (pre-filled from that record, and correctable).`,
      basisUnknown: (dims: string, many: boolean) => `Invitations and the response rate are not known for this filter: an invitation is known only by its institution record's country and institution type, and ${dims} ${many ? 'are' : 'is'} known only from the answers.`,
      and: 'and',
    },
    dimensions: { country: 'Country', institutionType: 'Institution type', role: 'Role', size: 'Size (learners)', erasmus: 'Erasmus+ status', location: 'Location' },
  },
  fr: {
    title: 'La mobilité du personnel dans l’EFP : rapport sur les données',
    pdfTitle: 'Rapport sur les données',
    page: 'page',
    of: 'sur',
    download: 'Télécharger le rapport en PDF',
    languageChoice: 'Langue du rapport',
    covers: 'Ce que couvre ce rapport',
    campaign: 'Campagne',
    fieldwork: 'Période d’enquête',
    filter: 'Filtre',
    breakdown: 'Ventilation',
    thresholds: 'Seuils de confidentialité',
    institutionsInvited: 'Établissements invités',
    invitations: 'Invitations',
    responses: 'Réponses',
    responseRate: 'Taux de réponse',
    rateBasis: 'Base du taux de réponse',
    basedOn: (n: string, campaign: string, filter: string, day: string) =>
      `Fondé sur <strong>${n}</strong> ${n === '1' ? 'réponse' : 'réponses'} à la campagne ${campaign} (filtre : ${filter}), établi le ${day}. Il ne s’agit <strong>pas d’un échantillon probabiliste</strong> : les chiffres décrivent les établissements et le personnel qui ont répondu, non l’ensemble des prestataires d’EFP.`,
    whoAnswered: 'Qui a répondu',
    responsesBy: 'Réponses par',
    groupsNotShown: (n: number) => `${n} ${n === 1 ? 'groupe non affiché' : 'groupes non affichés'}`,
    indicatorsNotShown: (n: number) => `${n} ${n === 1 ? 'indicateur non affiché' : 'indicateurs non affichés'}`,
    headline: 'Indicateurs clés',
    headlineChart: 'Indicateurs clés en pour cent',
    headlineAria: 'Indicateurs clés en pour cent ; les mêmes chiffres figurent dans le tableau ci-dessous',
    headlineCaption: 'Indicateurs clés en pour cent (les chiffres masqués sont omis).',
    indicator: 'Indicateur',
    overall: 'Ensemble',
    by: 'par',
    barriers: 'Obstacles, par ordre d’importance',
    barrierChart: 'Indice d’obstacles : % modéré ou majeur',
    barrierAria: 'Indice d’obstacles, classé ; les mêmes chiffres figurent dans le tableau ci-dessous',
    barrierCaption: 'Indice d’obstacles : part des réponses « modéré » ou « majeur » (« ne sait pas » exclu), par ordre décroissant.',
    barrier: 'Obstacle',
    barrierColumn: 'Indice d’obstacles (% modéré ou majeur)',
    heatmap: 'Carte thermique : indicateurs clés par pays',
    heatmapCaption: 'Indicateurs clés par pays',
    heatmapNote: 'Chaque colonne est ombrée de sa plus faible valeur publiée (la plus claire) à sa plus forte (la plus foncée) ; les moyennes ICQ et IMI dans les classes du tableau de bord de la mobilité.',
    quotes: 'Dans leurs propres mots',
    quotesSuppressed: 'Citations',
    countryNotShown: 'pays non indiqué',
    noQuote: 'Aucune citation n’est encore approuvée pour publication.',
    method: 'Note méthodologique',
    methodNote: (t: Thresholds) => [
      `Les cellules comptant des réponses de moins de ${t.minInstitutions} établissements ou ${t.minRespondents} répondants sont masquées, ainsi qu’une autre cellule partout où une cellule masquée pourrait être recalculée à partir d’un total et des cellules publiées (un groupe laissé vide par le filtrage des questions ne compte jamais comme protection) ; une seule décision par cellule vaut pour tous les tableaux, graphiques et exports. Dans une cellule publiée, lorsqu’un seul décompte de réponses d’une question trahirait les réponses d’un petit groupe, tous les décomptes de cette question y sont masqués (n reste publié), avec sa part des deux premiers points, sa moyenne et les valeurs d’indicateurs qui en sont calculées.`,
      `Les <strong>réponses partielles</strong> sont utilisées paire par paire : chaque chiffre compte toutes les personnes qui ont répondu aux questions dont il a besoin, si bien que son n varie d’un chiffre à l’autre ; une réponse n’est jamais écartée parce que d’autres questions sont vides. « Ne sait pas » est compté à part et jamais inclus dans une moyenne. Les parts d’accord (deux points supérieurs) viennent en premier, les moyennes ensuite.`,
      `<strong>Moyennes regroupant les items</strong> : l’ICQ (S2.1–S2.7), l’IMI (S4.1, S4.2, S4.8–S4.10 et S4.7) et les lignes « % d’accord » des indices ICQ, européanisation, soutien à l’apprentissage et impact regroupent toutes les réponses valides aux items (un répondant compte une fois par item répondu), et non une moyenne des moyennes des répondants. L’ICQ et l’IMI sont présentés dans les classes de couleur du tableau de bord de la mobilité ; pour l’IMI, les dispositifs de remplacement (S4.7) comptent comme maturité 1 (aucun) à 4 (réserve régionale partagée) et la moyenne est ramenée de 1–4 à 1–5.`,
      `<strong>Les taux sont des totaux regroupés</strong> : la somme des numérateurs sur la somme des dénominateurs, sur les réponses qui ont donné le dénominateur et au moins une partie du numérateur (une partie manquante compte 0). Les chiffres sur les apprenants de S2 (apprenants sortants, cohorte, séjours longs, reconnaissance, Europass, inclusion, entrants) sont des chiffres de l’établissement déclarés par chaque répondant : les chiffres de chaque répondant comptent, si bien qu’un établissement avec deux répondants en S2 compte deux fois. Le questionnaire de direction (S4) compte une fois par établissement (sa réponse la plus récente).`,
      `<strong>Accrédité</strong> signifie statut Erasmus+ (P8) « accrédité » ou « coordinateur de consortium » ; tout autre statut, et l’absence de réponse, compte comme non accrédité. L’écart d’accréditation est le taux de mobilité du personnel du premier groupe moins celui du second : compter les membres de consortium comme accrédités en changerait l’ampleur et peut en inverser le signe.`,
      'Les invitations sont comptées selon le pays et le type de l’établissement enregistrés ; les réponses selon ce que le répondant a lui-même indiqué, si bien qu’un taux de réponse sous un filtre est approximatif, et n’est pas connu pour les filtres sur la fonction, la taille, le statut Erasmus+ ou la localisation.',
    ],
    suppressed: (t: Thresholds) => `masqué (moins de ${t.minInstitutions} établissements ou ${t.minRespondents} répondants)`,
    noData: 'pas de données',
    points: 'points',
    againstTarget: 'par rapport à l’objectif',
    notStated: 'non indiqué',
    bands: { excellent: 'excellent', 'very good': 'très bien', good: 'bien', 'some progress': 'quelques progrès', 'little progress': 'peu de progrès' } as Record<Band, string>,
    suffix: { yes: ' (% oui)', agree: ' : % d’accord (4–5)', mean: ' : moyenne (1–5)', imi: ' : moyenne ramenée à 1–5', cohort: ' (% de la cohorte ; objectif UE 12 %)', staff: ' (personnel sortant pour 100 membres du personnel)', gap: ' (taux de mobilité du personnel, accrédités moins non accrédités, en points)' },
    scope: {
      all: 'toutes les réponses',
      everyone: 'aucun (tout le monde)',
      overallOnly: 'aucune (ensemble seulement)',
      thresholds: (t: Thresholds) => `${t.minInstitutions} établissements, ${t.minRespondents} répondants ; les groupes dont le nombre de réponses est masqué ne sont pas listés`,
      suppressedNumber: 'un nombre masqué de',
      unknown: 'inconnu pour ce filtre',
      notKnown: 'inconnu',
      to: 'au',
      basisAll: 'Taux de réponse : réponses ÷ invitations (liens non révoqués).',
      basisFilter: (where: string, dims: string) => `Taux de réponse : réponses dans ce filtre ÷ invitations aux établissements dont la fiche indique ${where}. Une réponse compte selon ${dims} indiqué(e) par le répondant (prérempli(e) depuis cette fiche, et modifiable).`,
      basisUnknown: (dims: string) => `Les invitations et le taux de réponse ne sont pas connus pour ce filtre : une invitation n’est connue que par le pays et le type de l’établissement enregistrés, et ${dims} ne se connaît que par les réponses.`,
      and: 'et',
    },
    dimensions: { country: 'Pays', institutionType: 'Type d’établissement', role: 'Fonction', size: 'Taille (apprenants)', erasmus: 'Statut Erasmus+', location: 'Localisation' },
  },
  de: {
    title: 'Personalmobilität in der Berufsbildung: Auswertungsbericht',
    pdfTitle: 'Auswertungsbericht',
    page: 'Seite',
    of: 'von',
    download: 'Bericht als PDF herunterladen',
    languageChoice: 'Sprache des Berichts',
    covers: 'Was dieser Bericht umfasst',
    campaign: 'Kampagne',
    fieldwork: 'Erhebungszeitraum',
    filter: 'Filter',
    breakdown: 'Aufschlüsselung',
    thresholds: 'Geheimhaltungsschwellen',
    institutionsInvited: 'Eingeladene Einrichtungen',
    invitations: 'Einladungen',
    responses: 'Antworten',
    responseRate: 'Rücklaufquote',
    rateBasis: 'Grundlage der Rücklaufquote',
    basedOn: (n: string, campaign: string, filter: string, day: string) =>
      `Grundlage: <strong>${n}</strong> ${n === '1' ? 'Antwort' : 'Antworten'} auf die Kampagne ${campaign} (Filter: ${filter}), erstellt am ${day}. Dies ist <strong>keine Zufallsstichprobe</strong>: Die Zahlen beschreiben die Einrichtungen und Beschäftigten, die geantwortet haben, nicht alle Berufsbildungsanbieter.`,
    whoAnswered: 'Wer geantwortet hat',
    responsesBy: 'Antworten nach',
    groupsNotShown: (n: number) => `${n} ${n === 1 ? 'Gruppe nicht gezeigt' : 'Gruppen nicht gezeigt'}`,
    indicatorsNotShown: (n: number) => `${n} ${n === 1 ? 'Indikator nicht gezeigt' : 'Indikatoren nicht gezeigt'}`,
    headline: 'Kernindikatoren',
    headlineChart: 'Kernindikatoren in Prozent',
    headlineAria: 'Kernindikatoren in Prozent; dieselben Zahlen stehen in der Tabelle darunter',
    headlineCaption: 'Kernindikatoren in Prozent (unterdrückte Werte sind ausgelassen).',
    indicator: 'Indikator',
    overall: 'Gesamt',
    by: 'nach',
    barriers: 'Hindernisse, nach Rang',
    barrierChart: 'Hindernisindex: % mittel oder groß',
    barrierAria: 'Hindernisindex nach Rang; dieselben Zahlen stehen in der Tabelle darunter',
    barrierCaption: 'Hindernisindex: Anteil der Antworten „mittel“ oder „groß“ („weiß nicht“ ausgelassen), nach Rang.',
    barrier: 'Hindernis',
    barrierColumn: 'Hindernisindex (% mittel oder groß)',
    heatmap: 'Heatmap: Kernindikatoren nach Land',
    heatmapCaption: 'Kernindikatoren nach Land',
    heatmapNote: 'Jede Spalte ist von ihrem niedrigsten veröffentlichten Wert (am hellsten) bis zu ihrem höchsten (am dunkelsten) schattiert; QCI- und IMI-Mittelwerte in den Stufen des Mobility Scoreboard.',
    quotes: 'In ihren eigenen Worten',
    quotesSuppressed: 'Zitate',
    countryNotShown: 'Land nicht gezeigt',
    noQuote: 'Noch kein Zitat zur Veröffentlichung freigegeben.',
    method: 'Methodische Hinweise',
    methodNote: (t: Thresholds) => [
      `Zellen mit Antworten aus weniger als ${t.minInstitutions} Einrichtungen oder von weniger als ${t.minRespondents} Befragten werden unterdrückt, ebenso eine weitere Zelle überall dort, wo eine unterdrückte aus einer Summe und den veröffentlichten Zellen zurückgerechnet werden könnte (eine Gruppe, die durch die Filterführung leer bleibt, zählt nie als Schutz); eine Entscheidung je Zelle gilt für jede Tabelle, jede Grafik und jeden Export. Wo in einer veröffentlichten Zelle eine einzelne Antwortzahl einer Frage die Antworten einer kleinen Gruppe preisgäbe, werden dort alle Antwortzahlen dieser Frage unterdrückt (n bleibt), mit dem Anteil der beiden obersten Stufen, dem Mittelwert und den daraus berechneten Indikatorwerten.`,
      `<strong>Unvollständige Antworten</strong> werden paarweise verwendet: Jede Zahl zählt alle, die die dafür nötigen Fragen beantwortet haben, daher unterscheidet sich ihr n von Zahl zu Zahl; eine Antwort wird nie verworfen, weil andere Fragen leer sind. „Weiß nicht“ wird gesondert gezählt und nie gemittelt. Zustimmungsanteile (die beiden oberen Stufen) stehen zuerst, Mittelwerte danach.`,
      `<strong>Über Items gepoolte Mittelwerte</strong>: Der QCI (S2.1–S2.7), der IMI (S4.1, S4.2, S4.8–S4.10 und S4.7) und die Zeilen „% Zustimmung“ der Indizes QCI, Europäisierung, Lernunterstützung und Wirkung fassen jede gültige Item-Antwort zusammen (eine befragte Person zählt einmal je beantwortetem Item), nicht einen Mittelwert der Mittelwerte der Befragten. QCI und IMI werden in den Farbstufen des Mobility Scoreboard gezeigt; beim IMI zählen Vertretungsregelungen (S4.7) als Reifegrad 1 (keine) bis 4 (gemeinsamer regionaler Pool), und der Mittelwert wird von 1–4 auf 1–5 umgerechnet.`,
      `<strong>Quoten sind gepoolte Summen</strong>: die Summe der Zähler über die Summe der Nenner, über die Antworten, die den Nenner und mindestens einen Teil des Zählers angaben (ein fehlender Teil zählt 0). Die Lernendenzahlen in S2 (entsandte Lernende, Jahrgang, lange Aufenthalte, Anerkennung, Europass, Inklusion, aufgenommene) sind Zahlen der Einrichtung, die jede befragte Person meldet: Die Zahlen jeder befragten Person zählen, eine Einrichtung mit zwei Befragten in S2 zählt also doppelt. Der Leitungsfragebogen (S4) zählt einmal je Einrichtung (ihre neueste Antwort).`,
      `<strong>Akkreditiert</strong> heißt Erasmus+-Status (P8) „akkreditiert“ oder „Konsortialkoordinator“; jeder andere Status und keine Angabe zählen als nicht akkreditiert. Die Akkreditierungslücke ist die Personalmobilitätsquote der ersten Gruppe minus der der zweiten: Würden Konsortialmitglieder als akkreditiert gezählt, änderte sich ihre Größe, und ihr Vorzeichen kann kippen.`,
      'Einladungen werden nach dem in der Einrichtung erfassten Land und Typ gezählt, Antworten nach den eigenen Angaben der Befragten; eine Rücklaufquote unter einem Filter ist daher ungefähr und für Filter nach Funktion, Größe, Erasmus+-Status oder Lage nicht bekannt.',
    ],
    suppressed: (t: Thresholds) => `unterdrückt (weniger als ${t.minInstitutions} Einrichtungen oder ${t.minRespondents} Befragte)`,
    noData: 'keine Daten',
    points: 'Punkte',
    againstTarget: 'gegenüber dem Ziel',
    notStated: 'keine Angabe',
    bands: { excellent: 'hervorragend', 'very good': 'sehr gut', good: 'gut', 'some progress': 'einige Fortschritte', 'little progress': 'geringe Fortschritte' } as Record<Band, string>,
    suffix: { yes: ' (% ja)', agree: ': % Zustimmung (4–5)', mean: ': Mittelwert (1–5)', imi: ': Mittelwert, umgerechnet auf 1–5', cohort: ' (% des Jahrgangs; EU-Ziel 12 %)', staff: ' (entsandtes Personal je 100 Beschäftigte)', gap: ' (Personalmobilitätsquote, akkreditiert minus nicht akkreditiert, Punkte)' },
    scope: {
      all: 'alle Antworten',
      everyone: 'keiner (alle)',
      overallOnly: 'keine (nur gesamt)',
      thresholds: (t: Thresholds) => `${t.minInstitutions} Einrichtungen, ${t.minRespondents} Befragte; Gruppen, deren Zahl der Antworten unterdrückt ist, werden nicht aufgeführt`,
      suppressedNumber: 'eine unterdrückte Zahl von',
      unknown: 'für diesen Filter nicht bekannt',
      notKnown: 'nicht bekannt',
      to: 'bis',
      basisAll: 'Rücklaufquote: Antworten ÷ Einladungen (nicht widerrufene Links).',
      basisFilter: (where: string, dims: string) => `Rücklaufquote: Antworten in diesem Filter ÷ Einladungen an Einrichtungen, deren Datensatz ${where} angibt. Eine Antwort zählt nach ${dims}, wie die befragte Person angab (aus diesem Datensatz vorausgefüllt und änderbar).`,
      basisUnknown: (dims: string) => `Einladungen und Rücklaufquote sind für diesen Filter nicht bekannt: Eine Einladung ist nur nach Land und Typ der erfassten Einrichtung bekannt, ${dims} nur aus den Antworten.`,
      and: 'und',
    },
    dimensions: { country: 'Land', institutionType: 'Einrichtungstyp', role: 'Funktion', size: 'Größe (Lernende)', erasmus: 'Erasmus+-Status', location: 'Lage' },
  },
} satisfies Record<Language, unknown>;

export type ReportText = (typeof TEXT)['en'];

export function reportText(language: Language): ReportText {
  return TEXT[language] as ReportText;
}

const LOCALES: Record<Language, string> = { en: 'en-GB', fr: 'fr-FR', de: 'de-DE' };

/** A survey text in the language (the survey's "default" is English). */
export function localText(text: LocalizedText | undefined, language: Language): string | undefined {
  if (!text) return undefined;
  return language === 'en' ? text.default : text[language] || text.default;
}

/** A figure in the language's number format: English as every other page writes it (evidence-format.ts), French and German with a decimal comma. */
export function reportValue(value: number | null, unit: Unit, language: Language): string {
  const t = reportText(language);
  if (value === null) return t.noData;
  const number = (digits: number, v = value) => new Intl.NumberFormat(LOCALES[language], { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(v);
  switch (unit) {
    case 'percent':
      return language === 'en' ? `${number(1)}%` : `${number(1)}\u00a0%`;
    case 'points':
      // A real minus sign, as evidence-format.ts writes it.
      return `${value >= 0 ? '+' : '\u2212'}${number(1, Math.abs(value))} ${t.points}`;
    case 'eur':
      return `${number(0)} EUR`;
    default:
      return number(2);
  }
}

/** An indicator's label in the language, from the survey's translated indicator, question and answer texts. */
export function reportIndicatorLabel(row: { code: string; family: string; label: string }, catalogue: QuestionCatalogue, language: Language): string {
  if (language === 'en') return row.label;
  const t = reportText(language);
  const family = localText(catalogue.indicatorLabels.get(row.family), language) ?? row.label;
  if (row.family === 'barrier_index' || row.family === 'top3_ranking') {
    const question = catalogue.byName.get(row.code.slice(row.code.indexOf(':') + 1));
    return localText(question?.title, language) ?? row.label;
  }
  if (row.family === 'participation_rate') return family + t.suffix.yes;
  if (row.code.endsWith(':agree')) return family + t.suffix.agree;
  if (row.code === 'imi') return family + t.suffix.imi;
  if (row.code === 'learner_mobility_rate') return family + t.suffix.cohort;
  if (row.code === 'staff_mobility_rate') return family + t.suffix.staff;
  if (row.code === 'accreditation_gap') return family + t.suffix.gap;
  if (row.code === row.family) return family + t.suffix.mean;
  return row.label;
}
