-- A covering index for one user's hourly history across clients (GET /v1/users/{id}/traffic and
-- the CLI `traffic user`): the primary key (user_id, client_id, ts_hour) seeks the user but not the
-- hour range, so a range query walked every hour the user has on every client and then sorted
-- them. This index seeks the range and yields it in hour order; with the byte columns in it the
-- query never reads the table. Measured in bench/README.md ("Traffic history").
CREATE INDEX traffic_samples_1h_user ON traffic_samples_1h (user_id, ts_hour, bytes_in, bytes_out);
