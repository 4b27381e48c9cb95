// The screen's strings, Portuguese (the platform's language) first. Values are
// strings with {name} placeholders, or functions for plurals.

const pt = {
  'app.title': 'Relatório de Conversas',
  'app.skip': 'Pular para o conteúdo',
  'lang.label': 'Idioma',
  'signout': 'Sair',

  'login.title': 'Acesse o relatório',
  'login.lead': 'Informe a chave de API da sua operação para consultar as conversas.',
  'login.key': 'Chave de API',
  'login.hint': 'A chave fica guardada apenas nesta aba e é apagada ao sair.',
  'login.submit': 'Entrar',
  'login.required': 'Informe a chave de API.',
  'login.rejected': 'A chave não foi aceita. Confira e informe-a novamente.',

  'list.title': 'Conversas',
  'list.total': (n, f) => (n === 1 ? '1 sessão' : `${f(n)} sessões`),
  'list.caption': 'Sessões mais recentes primeiro. Horários de Brasília ({tz}).',
  'list.empty': 'Nenhuma conversa encontrada.',
  'list.emptyHint': 'Ajuste o filtro ou amplie o intervalo de tempo.',
  'list.loading': 'Carregando conversas…',
  'list.loaded': (n, f) => (n === 1 ? '1 sessão encontrada.' : `${f(n)} sessões encontradas.`),
  'col.session': 'Sessão',
  'col.date': 'Data',
  'col.channel': 'Canal',
  'col.attendance': 'Atendimento',
  'col.tags': 'Etiquetas',
  'col.action': 'Ação',
  'row.open': 'Abrir',
  'row.openLabel': 'Abrir a conversa de {who}',
  'row.noName': 'Sem nome',
  'row.noPhone': 'Sem telefone',
  'row.handedOff': 'Transbordada',
  'row.botOnly': 'Só bot',
  'row.noProtocol': 'Sem protocolo',
  'row.moreTags': '+{n}',
  'pager.previous': 'Anterior',
  'pager.next': 'Próxima',
  'pager.page': 'Página {n}',
  'pager.label': 'Paginação',
  'pager.size': 'Por página',

  'filter.button': 'Filtrar',
  'filter.active': (n) => (n === 1 ? '1 filtro ativo' : `${n} filtros ativos`),
  'filter.title': 'Filtrar conversas',
  'filter.close': 'Fechar',
  'filter.interval': 'Intervalo de tempo',
  'filter.from': 'De',
  'filter.to': 'Até',
  'filter.intervalHint': 'Até 31 dias. Sem datas, mostra os últimos 31 dias.',
  'filter.today': 'Hoje',
  'filter.last7': 'Últimos 7 dias',
  'filter.last31': 'Últimos 31 dias',
  'filter.session': 'Sessão',
  'filter.sessionHint': 'ID da sessão do WhatsApp, ex.: c639c747-4637-4ff5-99c0-9f0e86d3c21b',
  'filter.protocol': 'Protocolo',
  'filter.protocolHint': '17 dígitos, começando pela data AAAAMMDD, ex.: 20251007092633646',
  'filter.tags': 'Etiquetas',
  'filter.tagsSearch': 'Buscar etiqueta',
  'filter.tagsNone': 'Nenhuma etiqueta neste intervalo.',
  'filter.tagMode': 'Corresponder a',
  'filter.tagAny': 'Qualquer uma',
  'filter.tagAll': 'Todas',
  'filter.info': 'Informação adicional',
  'filter.infoHint': 'Chaves gravadas pelos blocos de código do fluxo. Todas as condições precisam ser atendidas.',
  'filter.infoKey': 'Chave',
  'filter.infoOp': 'Operação',
  'filter.infoValue': 'Valor',
  'filter.infoAdd': 'Adicionar condição',
  'filter.infoRemove': 'Remover condição {n}',
  'filter.channels': 'Canais',
  'filter.channelsNone': 'Nenhum canal neste intervalo.',
  'filter.contact': 'Contato',
  'filter.contactHint': 'Telefone (com ou sem DDI), nome ou ID do contato.',
  'filter.q': 'Texto das mensagens',
  'filter.qHint': 'Conversas com todas as palavras, sem diferenciar maiúsculas nem acentos.',
  'filter.handedOff': 'Transbordo para humano',
  'filter.handedAny': 'Todas',
  'filter.handedYes': 'Transbordadas',
  'filter.handedNo': 'Só bot',
  'filter.clear': 'Limpar',
  'filter.cancel': 'Cancelar',
  'filter.apply': 'Aplicar filtros',
  'filter.facetsLoading': 'Carregando opções…',
  'filter.facetsFailed': 'Não foi possível carregar as opções deste intervalo.',
  'filter.fix': 'Corrija os campos destacados do filtro.',
  'filter.removeChip': 'Remover filtro: {label}',
  'filter.clearAll': 'Limpar filtros',

  'op.equals': 'É igual a',
  'op.not_equals': 'É diferente de',
  'op.contains': 'Contém',
  'op.not_contains': 'Não contém',
  'op.starts_with': 'Começa com',
  'op.exists': 'Existe',
  'op.not_exists': 'Não existe',

  'chip.last31': 'Últimos 31 dias',
  'chip.interval': '{from} – {to}',
  'chip.session': 'Sessão {v}',
  'chip.protocol': 'Protocolo {v}',
  'chip.tagsAny': 'Etiquetas: {v}',
  'chip.tagsAll': 'Todas as etiquetas: {v}',
  'chip.channels': 'Canal: {v}',
  'chip.contact': 'Contato: {v}',
  'chip.q': 'Texto: “{v}”',
  'chip.handedYes': 'Transbordadas',
  'chip.handedNo': 'Só bot',

  'err.bothDates': 'Informe as duas datas, ou nenhuma.',
  'err.dateOrder': 'A data final deve ser igual ou posterior à inicial.',
  'err.maxInterval': 'O intervalo não pode passar de 31 dias.',
  'err.date': 'Informe uma data válida.',
  'err.session': 'Informe um ID de sessão válido (UUID).',
  'err.protocol': 'O protocolo tem 17 dígitos e começa pela data (AAAAMMDD).',
  'err.infoKey': 'Escolha a chave.',
  'err.infoKeyFormat': 'Use letras sem acento, dígitos, _ . ou -.',
  'err.infoValue': 'Informe o valor.',
  'err.network': 'Não foi possível falar com o servidor. Verifique a conexão e tente novamente.',
  'err.server': 'O servidor não conseguiu responder ({status}). Tente novamente em instantes.',
  'err.notFound': 'Esta sessão não existe ou não pertence à sua operação.',
  'retry': 'Tentar novamente',

  'export.label': 'Exportar',
  'export.csv': 'CSV',
  'export.jsonl': 'JSONL',
  'export.csvLabel': 'Exportar as conversas do filtro em CSV',
  'export.jsonlLabel': 'Exportar as conversas do filtro em JSONL',
  'export.running': 'Exportando conversas…',
  'export.done': 'Arquivo {name} baixado.',
  'export.failed': 'A exportação falhou: {reason}',

  'conv.back': 'Voltar à lista',
  'conv.loading': 'Carregando conversa…',
  'conv.loaded': 'Conversa carregada: {n} mensagens.',
  'conv.sessionId': 'ID da sessão',
  'conv.copy': 'Copiar ID',
  'conv.copied': 'ID da sessão copiado.',
  'conv.copyFailed': 'Não foi possível copiar; selecione o ID e copie manualmente.',
  'conv.transcript': 'Baixar transcrição',
  'conv.timeline': 'Linha do tempo',
  'conv.details': 'Detalhes da sessão',
  'conv.channel': 'Canal',
  'conv.contact': 'Contato',
  'conv.phone': 'Telefone',
  'conv.contactId': 'ID do contato',
  'conv.started': 'Início',
  'conv.lastActivity': 'Última atividade',
  'conv.windowEnds': 'Fim da janela',
  'conv.status': 'Situação',
  'conv.messages': 'Mensagens',
  'conv.messageCounts': '{customer} do cliente · {bot} do bot · {agent} de agentes',
  'conv.tags': 'Etiquetas',
  'conv.info': 'Informações adicionais',
  'conv.agents': 'Agentes',
  'conv.attendances': 'Atendimentos',
  'conv.protocol': 'Protocolo',
  'conv.period': 'Período',
  'conv.none': 'Nenhum',
  'conv.noMessages': 'Esta sessão não tem mensagens.',
  'conv.attachment': 'Anexo',
  'conv.protocolStart': 'Atendimento {protocol}',

  'role.customer': 'Cliente',
  'role.bot': 'Bot',
  'role.agent': 'Agente',

  'status.active': 'Ativa',
  'status.ended': 'Encerrada',
  'status.open': 'Em aberto',
  'status.closed': 'Encerrado',
  'status.resolved': 'Resolvido',
  'status.abandoned': 'Abandonado',
  'status.cancelled_inactivity': 'Cancelado por inatividade',
  'status.handedOff': 'com transbordo',

  'event.requested': 'Transbordo solicitado para a fila {queue}',
  'event.assigned': '{agent} assumiu o atendimento ({queue})',
  'event.transferred': 'Transferido para {queue}: {agent}',
  'event.closed': 'Atendimento encerrado: {status}',
  'event.reason': 'motivo: {reason}',
  'event.tag': 'Etiqueta: {tag}',
  'event.info': '{key} = {value}',
  'event.anyQueue': 'sem fila',
  'event.anyAgent': 'agente',
};

const en = {
  'app.title': 'Conversations report',
  'app.skip': 'Skip to content',
  'lang.label': 'Language',
  'signout': 'Sign out',

  'login.title': 'Sign in to the report',
  'login.lead': "Enter your operation's API key to browse conversations.",
  'login.key': 'API key',
  'login.hint': 'The key is kept in this tab only and cleared when you sign out.',
  'login.submit': 'Sign in',
  'login.required': 'Enter the API key.',
  'login.rejected': 'The key was not accepted. Check it and enter it again.',

  'list.title': 'Conversations',
  'list.total': (n, f) => (n === 1 ? '1 session' : `${f(n)} sessions`),
  'list.caption': 'Newest sessions first. Times in Brasília time ({tz}).',
  'list.empty': 'No conversations found.',
  'list.emptyHint': 'Adjust the filter or widen the time interval.',
  'list.loading': 'Loading conversations…',
  'list.loaded': (n, f) => (n === 1 ? '1 session found.' : `${f(n)} sessions found.`),
  'col.session': 'Session',
  'col.date': 'Date',
  'col.channel': 'Channel',
  'col.attendance': 'Attendance',
  'col.tags': 'Tags',
  'col.action': 'Action',
  'row.open': 'Open',
  'row.openLabel': 'Open the conversation with {who}',
  'row.noName': 'No name',
  'row.noPhone': 'No phone',
  'row.handedOff': 'Handed off',
  'row.botOnly': 'Bot only',
  'row.noProtocol': 'No protocol',
  'row.moreTags': '+{n}',
  'pager.previous': 'Previous',
  'pager.next': 'Next',
  'pager.page': 'Page {n}',
  'pager.label': 'Pagination',
  'pager.size': 'Per page',

  'filter.button': 'Filter',
  'filter.active': (n) => (n === 1 ? '1 active filter' : `${n} active filters`),
  'filter.title': 'Filter conversations',
  'filter.close': 'Close',
  'filter.interval': 'Time interval',
  'filter.from': 'From',
  'filter.to': 'To',
  'filter.intervalHint': 'Up to 31 days. Without dates, the last 31 days.',
  'filter.today': 'Today',
  'filter.last7': 'Last 7 days',
  'filter.last31': 'Last 31 days',
  'filter.session': 'Session',
  'filter.sessionHint': 'WhatsApp session id, e.g. c639c747-4637-4ff5-99c0-9f0e86d3c21b',
  'filter.protocol': 'Protocol',
  'filter.protocolHint': '17 digits starting with the date YYYYMMDD, e.g. 20251007092633646',
  'filter.tags': 'Tags',
  'filter.tagsSearch': 'Search tags',
  'filter.tagsNone': 'No tags in this interval.',
  'filter.tagMode': 'Match',
  'filter.tagAny': 'Any of them',
  'filter.tagAll': 'All of them',
  'filter.info': 'Additional information',
  'filter.infoHint': "Keys set by the flow's code blocks. Every condition must hold.",
  'filter.infoKey': 'Key',
  'filter.infoOp': 'Operation',
  'filter.infoValue': 'Value',
  'filter.infoAdd': 'Add condition',
  'filter.infoRemove': 'Remove condition {n}',
  'filter.channels': 'Channels',
  'filter.channelsNone': 'No channels in this interval.',
  'filter.contact': 'Contact',
  'filter.contactHint': "The contact's phone (with or without country code), name or id.",
  'filter.q': 'Message text',
  'filter.qHint': 'Conversations with every word, ignoring case and accents.',
  'filter.handedOff': 'Handoff to a human',
  'filter.handedAny': 'Any',
  'filter.handedYes': 'Handed off',
  'filter.handedNo': 'Bot only',
  'filter.clear': 'Clear',
  'filter.cancel': 'Cancel',
  'filter.apply': 'Apply filters',
  'filter.facetsLoading': 'Loading options…',
  'filter.facetsFailed': 'Could not load the options of this interval.',
  'filter.fix': 'Fix the highlighted filter fields.',
  'filter.removeChip': 'Remove filter: {label}',
  'filter.clearAll': 'Clear filters',

  'op.equals': 'Equals',
  'op.not_equals': 'Does not equal',
  'op.contains': 'Contains',
  'op.not_contains': 'Does not contain',
  'op.starts_with': 'Starts with',
  'op.exists': 'Exists',
  'op.not_exists': 'Does not exist',

  'chip.last31': 'Last 31 days',
  'chip.interval': '{from} – {to}',
  'chip.session': 'Session {v}',
  'chip.protocol': 'Protocol {v}',
  'chip.tagsAny': 'Tags: {v}',
  'chip.tagsAll': 'All tags: {v}',
  'chip.channels': 'Channel: {v}',
  'chip.contact': 'Contact: {v}',
  'chip.q': 'Text: “{v}”',
  'chip.handedYes': 'Handed off',
  'chip.handedNo': 'Bot only',

  'err.bothDates': 'Give both dates, or neither.',
  'err.dateOrder': 'The end date must be on or after the start date.',
  'err.maxInterval': 'The interval may not exceed 31 days.',
  'err.date': 'Enter a valid date.',
  'err.session': 'Enter a valid session id (UUID).',
  'err.protocol': 'A protocol has 17 digits and starts with the date (YYYYMMDD).',
  'err.infoKey': 'Choose the key.',
  'err.infoKeyFormat': 'Use unaccented letters, digits, _ . or -.',
  'err.infoValue': 'Enter the value.',
  'err.network': 'Could not reach the server. Check the connection and try again.',
  'err.server': 'The server could not answer ({status}). Try again in a moment.',
  'err.notFound': 'This session does not exist or belongs to another operation.',
  'retry': 'Try again',

  'export.label': 'Export',
  'export.csv': 'CSV',
  'export.jsonl': 'JSONL',
  'export.csvLabel': "Export the filter's conversations as CSV",
  'export.jsonlLabel': "Export the filter's conversations as JSONL",
  'export.running': 'Exporting conversations…',
  'export.done': 'Downloaded {name}.',
  'export.failed': 'The export failed: {reason}',

  'conv.back': 'Back to the list',
  'conv.loading': 'Loading conversation…',
  'conv.loaded': 'Conversation loaded: {n} messages.',
  'conv.sessionId': 'Session id',
  'conv.copy': 'Copy id',
  'conv.copied': 'Session id copied.',
  'conv.copyFailed': 'Could not copy; select the id and copy it by hand.',
  'conv.transcript': 'Download transcript',
  'conv.timeline': 'Timeline',
  'conv.details': 'Session details',
  'conv.channel': 'Channel',
  'conv.contact': 'Contact',
  'conv.phone': 'Phone',
  'conv.contactId': 'Contact id',
  'conv.started': 'Started',
  'conv.lastActivity': 'Last activity',
  'conv.windowEnds': 'Window ends',
  'conv.status': 'Status',
  'conv.messages': 'Messages',
  'conv.messageCounts': '{customer} from the customer · {bot} from the bot · {agent} from agents',
  'conv.tags': 'Tags',
  'conv.info': 'Additional information',
  'conv.agents': 'Agents',
  'conv.attendances': 'Attendances',
  'conv.protocol': 'Protocol',
  'conv.period': 'Period',
  'conv.none': 'None',
  'conv.noMessages': 'This session has no messages.',
  'conv.attachment': 'Attachment',
  'conv.protocolStart': 'Attendance {protocol}',

  'role.customer': 'Customer',
  'role.bot': 'Bot',
  'role.agent': 'Agent',

  'status.active': 'Active',
  'status.ended': 'Ended',
  'status.open': 'Open',
  'status.closed': 'Closed',
  'status.resolved': 'Resolved',
  'status.abandoned': 'Abandoned',
  'status.cancelled_inactivity': 'Cancelled for inactivity',
  'status.handedOff': 'handed off',

  'event.requested': 'Handoff requested to the {queue} queue',
  'event.assigned': '{agent} took over ({queue})',
  'event.transferred': 'Transferred to {queue}: {agent}',
  'event.closed': 'Attendance closed: {status}',
  'event.reason': 'reason: {reason}',
  'event.tag': 'Tag: {tag}',
  'event.info': '{key} = {value}',
  'event.anyQueue': 'no queue',
  'event.anyAgent': 'an agent',
};

export const languages = { 'pt-BR': pt, en };
export const defaultLanguage = 'pt-BR';

const storageKey = 'chatreport.lang';
let current = defaultLanguage;

export function language() {
  return current;
}

// setLanguage switches the dictionary and remembers the choice on this
// device; the language is a preference, not a secret.
export function setLanguage(lang) {
  current = languages[lang] ? lang : defaultLanguage;
  try {
    localStorage.setItem(storageKey, current);
  } catch {
    // Storage may be disabled; the choice then lasts until the page reloads.
  }
  document.documentElement.lang = current;
}

export function initialLanguage() {
  try {
    const saved = localStorage.getItem(storageKey);
    if (saved && languages[saved]) return saved;
  } catch {
    // fall through to the default
  }
  return defaultLanguage;
}

const numberFormats = {};
export function formatNumber(n) {
  numberFormats[current] ??= new Intl.NumberFormat(current);
  return numberFormats[current].format(n);
}

// t returns the string for key in the current language, with {name}
// placeholders filled from params. A function entry gets params.n and the
// number formatter.
export function t(key, params = {}) {
  let s = languages[current][key] ?? languages[defaultLanguage][key];
  if (s === undefined) return key;
  if (typeof s === 'function') return s(params.n, formatNumber);
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

// translatePage fills the static elements: data-i18n sets the text,
// data-i18n-attr="attr:key;attr:key" sets attributes.
export function translatePage(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n);
  }
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':');
      el.setAttribute(attr.trim(), t(key.trim()));
    }
  }
  document.title = `${t('app.title')} · chatreport`;
}
