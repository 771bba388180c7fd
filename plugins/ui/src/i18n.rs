//! English and Swedish for every text of the panels, switchable at run time ([`Lang`]).
//! Texts are looked up by their English wording; a text missing from the table shows in
//! English (and a test checks the table covers what the panels use).

use bevy::prelude::*;

/// The language of the panels.
#[derive(Resource, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    English,
    Swedish,
}

/// (English, Swedish).
pub const TEXTS: &[(&str, &str)] = &[
    ("Stockholm digital twin", "Stockholms digitala tvilling"),
    ("buildings", "byggnader"),
    ("traffic signals", "trafiksignaler"),
    ("tiles", "rutor"),
    ("Frame city (Home)", "Visa hela staden (Home)"),
    ("North up (N)", "Norr uppåt (N)"),
    ("Import problems", "Importproblem"),
    ("About", "Om"),
    ("Live", "Live"),
    ("Layers", "Lager"),
    ("Alarms", "Larm"),
    ("Search", "Sök"),
    ("sun, UTC h", "sol, UTC h"),
    ("up", "upp"),
    ("sun follows the live clock", "solen följer klockan"),
    ("Clock", "Klocka"),
    ("in Stockholm", "i Stockholm"),
    ("signal heads", "signallyktor"),
    ("street lamps", "gatlampor"),
    ("meters", "energimätare"),
    ("air sensors", "luftsensorer"),
    ("live", "aktiv"),
    ("stale", "inaktuell"),
    ("fault", "fel"),
    ("never seen", "aldrig hörd"),
    ("source", "källa"),
    ("state", "tillstånd"),
    ("accepted", "godkända"),
    ("rejected", "avvisade"),
    ("superseded", "ersatta"),
    ("Recent rejections", "Senaste avvisningar"),
    ("Unknown devices", "Okända enheter"),
    ("messages", "meddelanden"),
    ("Applied", "Tillämpade"),
    ("out of order", "i fel ordning"),
    ("from unknown devices", "från okända enheter"),
    (
        "No source runs: registered devices wait for their first message.",
        "Ingen källa körs: registrerade enheter väntar på sitt första meddelande.",
    ),
    ("Buildings", "Byggnader"),
    ("Signal heads", "Signallyktor"),
    ("Street lamps", "Gatlampor"),
    ("Meters", "Energimätare"),
    ("Air sensors", "Luftsensorer"),
    ("Colour buildings by", "Färglägg byggnader efter"),
    ("type and height", "typ och höjd"),
    ("live power", "effekt nu"),
    ("energy intensity", "energiintensitet"),
    ("data freshness", "datans färskhet"),
    ("Legend", "Teckenförklaring"),
    ("no data", "inga data"),
    ("Fly to (F)", "Flyg dit (F)"),
    ("Close", "Stäng"),
    ("All attributes", "Alla attribut"),
    ("Id", "Id"),
    ("Kind", "Typ"),
    ("Name", "Namn"),
    ("Address", "Adress"),
    ("Height", "Höjd"),
    ("Levels", "Våningar"),
    ("Footprint area", "Fotavtryck"),
    ("Source", "Källa"),
    ("Device", "Enhet"),
    ("Health", "Status"),
    ("Last seen", "Senast hörd"),
    ("Fault", "Fel"),
    ("Power", "Effekt"),
    ("Energy today", "Energi i dag"),
    ("Heating", "Värme"),
    ("Language", "Språk"),
    (
        "Import problems (features skipped or partly read)",
        "Importproblem (objekt som hoppats över eller lästs delvis)",
    ),
    ("Building", "Byggnad"),
    ("Loading the city", "Staden laddas"),
    ("height measured", "uppmätt höjd"),
    ("height from storeys", "höjd från antal våningar"),
    ("height default (12 m)", "standardhöjd (12 m)"),
    ("landmark model", "landmärke (modell)"),
    ("just heard", "nyss hörd"),
    ("half the stale limit", "halva gränsen för inaktuell"),
    ("never heard", "aldrig hörd"),
    ("running", "körs"),
    ("City", "Staden"),
    ("Reported via", "Rapporterad via"),
    ("Reports, not mapped", "Rapporterar, ej mappat"),
    ("Messages with no known field", "Meddelanden utan känt fält"),
    ("msg/s", "medd./s"),
    ("Frame time", "Bildtid"),
    ("alarms", "larm"),
    ("Lighting", "Belysning"),
    ("Energy", "Energi"),
    ("Air quality", "Luftkvalitet"),
    ("Traffic signals", "Trafiksignaler"),
    ("on", "tänd"),
    ("off", "släckt"),
    ("dimmed", "dimrad"),
    ("Power now", "Effekt nu"),
    ("Only faulty lamps", "Bara trasiga lampor"),
    ("Total power now", "Total effekt nu"),
    ("Top consumers", "Största förbrukare"),
    (
        "Swedish limit values (SFS 2010:477): NO2 90 µg/m³ hourly, PM10 50 µg/m³ daily, PM2.5 25 µg/m³ annual mean.",
        "Miljökvalitetsnormer (SFS 2010:477): NO2 90 µg/m³ timmedel, PM10 50 µg/m³ dygnsmedel, PM2,5 25 µg/m³ årsmedel.",
    ),
    ("Sensor", "Sensor"),
    ("intersections", "korsningar"),
    ("Phase timeline", "Faslinje"),
    ("limit", "gräns"),
    ("Aspect", "Signalbild"),
    ("Time in state", "Tid i läget"),
    ("On", "Tänd"),
    ("Dim level", "Dimnivå"),
    ("Lamp power", "Lampeffekt"),
    ("Lamp fault", "Lampfel"),
    ("NO2", "NO2"),
    ("PM10", "PM10"),
    ("PM2.5", "PM2,5"),
    ("Temperature", "Temperatur"),
    ("minutes ago", "minuter sedan"),
    ("yes", "ja"),
    ("no", "nej"),
    ("never", "aldrig"),
    ("building", "byggnad"),
    ("lamp", "gatlampa"),
    ("signal_head", "signallykta"),
    ("air_sensor", "luftsensor"),
    ("landmark", "landmärke"),
    ("connected", "ansluten"),
    ("connecting", "ansluter"),
    ("playing", "spelas upp"),
    ("finished", "klar"),
];

/// A text made at run time (e.g. a legend label): the table's wording, else the text with its
/// unit words translated.
pub fn tr_str(lang: Lang, text: &str) -> String {
    match lang {
        Lang::English => text.to_string(),
        Lang::Swedish => TEXTS.iter().find(|(en, _)| *en == text).map_or_else(
            || text.replace(" per year", " per år"),
            |(_, sv)| (*sv).to_string(),
        ),
    }
}

/// The text in `lang`.
pub fn tr(lang: Lang, english: &'static str) -> &'static str {
    match lang {
        Lang::English => english,
        Lang::Swedish => TEXTS
            .iter()
            .find(|(en, _)| *en == english)
            .map_or(english, |(_, sv)| sv),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_has_one_swedish_wording() {
        for (i, (en, sv)) in TEXTS.iter().enumerate() {
            assert!(!sv.is_empty(), "{en}");
            assert!(
                TEXTS[i + 1..].iter().all(|(e, _)| e != en),
                "{en} is listed twice"
            );
        }
        assert_eq!(tr(Lang::Swedish, "Street lamps"), "Gatlampor");
        assert_eq!(tr(Lang::English, "Street lamps"), "Street lamps");
        assert_eq!(tr_str(Lang::Swedish, "stale"), "inaktuell");
        assert_eq!(
            tr_str(Lang::Swedish, "75 kWh/m² per year"),
            "75 kWh/m² per år"
        );
    }

    /// Every literal text the panels pass to `tr` has a Swedish entry.
    #[test]
    fn the_panels_use_only_translated_texts() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src");
        let mut missing = Vec::new();
        for entry in std::fs::read_dir(dir).expect("src") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).expect("source");
            for part in text.split("tr(lang, \"").skip(1) {
                let Some(end) = part.find('"') else { continue };
                let key = &part[..end];
                if !TEXTS.iter().any(|(en, _)| *en == key) {
                    missing.push(format!("{}: {key}", path.display()));
                }
            }
        }
        assert!(missing.is_empty(), "untranslated: {missing:#?}");
    }
}
