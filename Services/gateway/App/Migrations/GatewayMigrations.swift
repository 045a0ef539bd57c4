import ServiceCore

/// The gateway's own database (`GATEWAY_DATABASE_URL`): limits shared by its replicas. Never edit a
/// shipped migration; add the next number.
enum GatewayMigrations {
    static let all: [Migration] = [
        Migration(
            1,
            "create_rate_limit_windows",
            [
                """
                CREATE TABLE rate_limit_windows (
                    key text NOT NULL,
                    window_start bigint NOT NULL,
                    granted integer NOT NULL CHECK (granted >= 0),
                    updated_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (key, window_start)
                )
                """,
                "CREATE INDEX rate_limit_windows_window_start ON rate_limit_windows (window_start)",
                // One call leases quota for a batch of keys. Each key's grant is a slice of what its
                // sliding window has left (`limit - granted - ceil(previous window × weight)`): at least
                // what is waiting for it, else an eighth of what is left up to `want`, so slices shrink
                // as quota runs out and unused slices never strand much. Rows are locked in key order,
                // so replicas leasing overlapping keys cannot deadlock.
                """
                CREATE FUNCTION gateway_lease(
                    p_keys text[], p_windows bigint[], p_limits integer[], p_wants integer[], p_needs integer[],
                    p_weights double precision[], p_length integer
                ) RETURNS TABLE (lease_key text, lease_window bigint, lease_granted integer, lease_total integer, lease_previous integer)
                LANGUAGE plpgsql AS $$
                DECLARE
                    i integer;
                    v_current integer;
                    v_previous integer;
                    v_available integer;
                    v_granted integer;
                BEGIN
                    FOR i IN SELECT t.ord FROM unnest(p_keys) WITH ORDINALITY AS t(k, ord) ORDER BY t.k, t.ord LOOP
                        INSERT INTO rate_limit_windows (key, window_start, granted) VALUES (p_keys[i], p_windows[i], 0)
                            ON CONFLICT (key, window_start) DO NOTHING;
                        SELECT r.granted INTO v_current FROM rate_limit_windows r
                            WHERE r.key = p_keys[i] AND r.window_start = p_windows[i] FOR UPDATE;
                        SELECT COALESCE(max(r.granted), 0) INTO v_previous FROM rate_limit_windows r
                            WHERE r.key = p_keys[i] AND r.window_start = p_windows[i] - p_length;
                        v_available := p_limits[i] - v_current - CEIL(v_previous * p_weights[i])::integer;
                        IF v_available <= 0 THEN
                            v_granted := 0;
                        ELSE
                            v_granted := LEAST(v_available, GREATEST(p_needs[i], LEAST(p_wants[i], v_available / 8)));
                            UPDATE rate_limit_windows r SET granted = r.granted + v_granted, updated_at = now()
                                WHERE r.key = p_keys[i] AND r.window_start = p_windows[i];
                        END IF;
                        lease_key := p_keys[i];
                        lease_window := p_windows[i];
                        lease_granted := v_granted;
                        lease_total := v_current + v_granted;
                        lease_previous := v_previous;
                        RETURN NEXT;
                    END LOOP;
                END
                $$
                """,
            ]
        )
    ]
}
