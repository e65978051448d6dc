const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const date = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

export const when = (iso: string | null, never = 'Never'): string => (iso === null ? never : dateTime.format(new Date(iso)));
export const day = (iso: string | null, never = 'Never'): string => (iso === null ? never : date.format(new Date(iso)));
export const count = (n: number): string => n.toLocaleString();
