-- The worker claims due deliveries target by target (a limit on work in flight per target), so
-- the index of pending deliveries leads with the target; sent and dead ones leave it.
DROP INDEX idx_deliveries_state_next_attempt_at;
CREATE INDEX idx_deliveries_due ON deliveries (target, next_attempt_at) WHERE state = 'pending';
