/**
 * Characters that must not reach a reader as they are: controls other than tab and line feed, bidi embeddings,
 * overrides, isolates and marks, zero-width and other invisible format characters, line/paragraph separators, and
 * lone surrogates. Text from outside (a repository, an agent) is shown with these replaced.
 */
export const hiddenCharacters =
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
