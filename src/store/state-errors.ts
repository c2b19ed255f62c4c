/** The state file is unusable; the server must stop and must not overwrite it. */
export class StateFileError extends Error {
  override name = 'StateFileError';
}
