"""MovieLens loaders on tiny hand-written folders in each GroupLens format."""

from __future__ import annotations

import pytest

from hybridrec.data import DataError, load_dataset


def test_ml_100k_item_file_is_latin1_with_genre_flags(tmp_path):
    (tmp_path / "u.data").write_text("2\t1\t4\t881250949\n1\t2\t3\t881250950\n")
    flags_1 = "|0|0|0|1|1|1" + "|0" * 13  # Animation, Children's, Comedy
    flags_2 = "|1" + "|0" * 18  # only "unknown": no genre
    (tmp_path / "u.item").write_bytes(
        ("1|Toy Story (1995)|01-Jan-1995||http://x" + flags_1 + "\n"
         "2|Café (1996)|01-Jan-1996||http://y" + flags_2 + "\n"
         "3|Unrated (1997)|01-Jan-1997||http://z" + flags_2 + "\n").encode("latin-1")
    )
    data = load_dataset("ml-100k", str(tmp_path))
    assert data.item_table["title"].tolist() == ["Toy Story (1995)", "Café (1996)", "Unrated (1997)"]
    assert data.item_table["genres"].tolist() == ["Animation, Children's, Comedy", "", ""]
    assert data.item_counts().tolist() == [1, 1, 0]


def test_ml_1m_double_colon_files(tmp_path):
    (tmp_path / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n")
    (tmp_path / "movies.dat").write_bytes(
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "3::Amélie (2001)::(no genres listed)\n".encode("latin-1")
    )
    data = load_dataset("ml-1m", str(tmp_path), rating_threshold=4)
    assert data.item_vocab.to_list() == ["3", "661", "1193"]
    assert data.to_frame().values.tolist() == [["1", "1193", 978300760, 5.0]]
    assert data.item_table["genres"].tolist() == ["", "Animation, Children's, Musical", "Drama"]
    assert data.item_table["title"][0] == "Amélie (2001)"


def test_ml_latest_tags_and_utf8_errors(tmp_path):
    (tmp_path / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n")
    (tmp_path / "movies.csv").write_text('movieId,title,genres\n1,"Toy Story, The (1995)",Comedy\n')
    (tmp_path / "tags.csv").write_text(
        "userId,movieId,tag,timestamp\n1,1,pixar,1\n2,1,fun,2\n3,1,pixar,3\n4,7,orphan,4\n"
    )
    data = load_dataset("ml-latest-small", str(tmp_path))
    assert data.item_text(0) == {"title": "Toy Story, The (1995)", "description": "",
                                 "genres": "Comedy", "tags": "pixar, fun"}
    (tmp_path / "tags.csv").write_bytes(b"userId,movieId,tag,timestamp\n1,1,caf\xe9,1\n")
    with pytest.raises(DataError, match=r"tags.csv, line 2: text is not valid utf-8"):
        load_dataset("ml-latest-small", str(tmp_path))


def test_bad_rating_row_names_line(tmp_path):
    (tmp_path / "u.data").write_text("1\t1\t4\t881250949\n1\t2\tfive\t881250950\n")
    (tmp_path / "u.item").write_text("1|A|x||u" + "|0" * 19 + "\n")
    with pytest.raises(DataError, match=r"u.data, line 2: cannot read 'five' in column 'rating'"):
        load_dataset("ml-100k", str(tmp_path))
    data = load_dataset("ml-100k", str(tmp_path), on_bad_rows="skip")
    assert len(data) == 1 and data.item_vocab.to_list() == ["1"]
