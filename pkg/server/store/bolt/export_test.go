package bolt

// PendingMax is pendingMax, for the external tests.
const PendingMax = pendingMax
